#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decides which address a request comes from, honouring `X-Forwarded-For` only from trusted proxies.
public struct ClientAddressResolver: Sendable {
    /// The proxies whose `X-Forwarded-For` is believed.
    public let trustedProxies: [IPNetwork]

    /// Creates a resolver; with no trusted proxies, the socket peer is always the client.
    public init(trustedProxies: [IPNetwork] = []) {
        self.trustedProxies = trustedProxies
    }

    /// Parses `TRUSTED_PROXIES`: comma-separated CIDR networks.
    public static func parse(_ text: String?) throws -> ClientAddressResolver {
        var networks: [IPNetwork] = []
        for entry in (text ?? "").split(separator: ",") where !entry.trimmingWhitespace().isEmpty {
            guard let network = IPNetwork(entry.trimmingWhitespace()) else {
                throw ConfigurationError("TRUSTED_PROXIES", "has '\(entry.trimmingWhitespace())', which is not an IP network such as 10.0.0.0/8")
            }
            networks.append(network)
        }
        return ClientAddressResolver(trustedProxies: networks)
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the rightmost untrusted hop of
    /// `X-Forwarded-For` (all its values joined). A header from an untrusted peer is ignored.
    public func clientAddress(peer: String?, forwardedFor: [String]) -> String {
        forwardedClientAddress(peer: peer, forwardedFor: forwardedFor) ?? peer ?? "unknown"
    }

    /// The client's address as a trusted proxy forwarded it, or `nil` when the peer is not a trusted proxy or
    /// forwarded no address.
    public func forwardedClientAddress(peer: String?, forwardedFor: [String]) -> String? {
        guard let peer, !trustedProxies.isEmpty, !forwardedFor.isEmpty, isTrusted(peer) else { return nil }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { String($0.trimmingWhitespace()) }.filter { !$0.isEmpty }
        // Only an address becomes the client's identity: a hop that is not one (a name, "unknown", junk, anything
        // longer than an address can be) leaves the peer as the client.
        for hop in hops.reversed() where !isTrusted(hop) {
            return Self.address(hop)
        }
        return hops.first.flatMap(Self.address)
    }

    /// The longest text an address can take in `X-Forwarded-For`: a bracketed IPv6 address with a zone and a port.
    static let maximumForwardedAddressLength = 64

    /// `text` in canonical form when it is an IPv4 or IPv6 address (ports and brackets dropped), else `nil`.
    static func address(_ text: String) -> String? {
        guard text.utf8.count <= maximumForwardedAddressLength, IPNetwork.parseAddress(text) != nil else { return nil }
        return canonical(text)
    }

    /// The address in a canonical text form (ports and brackets dropped), or the text itself if it is no address.
    static func canonical(_ address: String) -> String {
        guard let bytes = IPNetwork.parseAddress(address) else { return address }
        if bytes.count == 4 { return ipv4Text(bytes) }
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return "unknown" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `a.b.c.d`.
    private static func ipv4Text(_ bytes: [UInt8]) -> String {
        var text = ""  // at most 15 bytes: stays a small string, no allocation
        for (index, byte) in bytes.enumerated() {
            if index > 0 { text += "." }
            text += String(byte)
        }
        return text
    }

    /// The key the limiter uses for an address: IPv6 addresses are grouped by their /64, which one host usually owns.
    public static func limiterKey(for address: String) -> String {
        isCanonicalIPv4(address) ? address : normalisedLimiterKey(for: address)  // the usual case needs no parsing
    }

    /// ``limiterKey(for:)`` without its fast path for canonical IPv4 addresses, which are their own key.
    static func normalisedLimiterKey(for address: String) -> String {
        guard let bytes = IPNetwork.parseAddress(address) else { return address }
        if bytes.count == 4 { return ipv4Text(bytes) }
        return stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":") + "::/64"
    }

    /// Whether `text` is four decimal octets, 0-255 without leading zeros, as ``ipv4Text(_:)`` writes them.
    static func isCanonicalIPv4(_ text: String) -> Bool {
        var octets = 0
        var value = 0
        var digits = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return false }
                octets += 1
                (value, digits) = (0, 0)
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                guard digits == 0 || value > 0 else { return false }  // a leading zero
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
                guard value <= 255 else { return false }
            } else {
                return false
            }
        }
        return octets == 3 && digits > 0
    }

    private func isTrusted(_ address: String) -> Bool {
        guard let bytes = IPNetwork.parseAddress(address) else { return false }
        return trustedProxies.contains { $0.contains(bytes) }
    }
}
