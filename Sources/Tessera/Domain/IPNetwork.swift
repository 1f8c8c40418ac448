#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 network in CIDR form, such as `10.0.0.0/8` or `fd00::/8`.
public struct IPNetwork: Sendable, Equatable, Hashable {
    let bytes: [UInt8]
    let prefixLength: Int
    /// The network as it was written.
    public let text: String

    /// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a network of one).
    public init?(_ text: some StringProtocol) {
        self.text = String(text)
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let bytes = IPNetwork.parseAddress(first) else { return nil }
        let maximum = bytes.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...maximum).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = maximum
        }
        self.bytes = bytes
    }

    /// Parses a network in plain CIDR form only (`a.b.c.d/n`, `x::y/n` or a bare address): no brackets, ports or
    /// zones, as a token's `allowedCidrs` must be written.
    public init?(cidr text: String) {
        let address = text.split(separator: "/", maxSplits: 1).first ?? ""
        // One colon with dots is an IPv4 address with a port; IPv6 (with an embedded IPv4 address or not) has more.
        guard text.utf8.count <= 49, !address.contains(where: { "[]%".contains($0) }),
            !(address.contains(".") && address.filter { $0 == ":" }.count == 1)
        else { return nil }
        self.init(text)
    }

    /// A network no client address lies in: what a stored entry that no longer parses restricts a token to.
    public static let nowhere = IPNetwork("0.0.0.0/32")!

    /// Whether `address` (4 or 16 bytes) lies in this network.
    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        var remaining = prefixLength
        for index in bytes.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address[index] & mask != bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 address in text, or `nil`.
    ///
    /// Accepts `[v6]`, `[v6]:port` and `v4:port` as proxies write them, and reads IPv4-mapped IPv6
    /// (`::ffff:a.b.c.d`, what a dual-stack listener reports for IPv4 clients) as the IPv4 address.
    static func parseAddress(_ text: some StringProtocol) -> [UInt8]? {
        var text = String(text)
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            text = String(text[text.index(after: text.startIndex)..<close])
        } else if text.utf8.lazy.filter({ $0 == UInt8(ascii: ":") }).count == 1, let colon = text.firstIndex(of: ":") {
            text = String(text[..<colon])
        }
        if let zone = text.firstIndex(of: "%") { text = String(text[..<zone]) }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        let mappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
        return bytes.starts(with: mappedPrefix) ? Array(bytes.suffix(4)) : bytes
    }
}
