import TokenCrypto

/// What an API key may do.
public enum APIKeyRole: String, Sendable, CaseIterable {
    /// Every endpoint: create, list, read, revoke and verify tokens.
    case admin
    /// Verification only, for downstream services.
    case verifier
}

/// The authenticated caller of a request: the name and role of the API key it presented.
public struct Caller: Sendable, Equatable {
    /// The key's configured name, recorded as `created_by` and in audit rows.
    public let name: String
    /// The key's role.
    public let role: APIKeyRole
}

/// One configured API key, kept only as the BLAKE2b-256 digest of its secret.
public struct APIKeyCredential: Sendable {
    /// The key's name.
    public let name: String
    /// The key's role.
    public let role: APIKeyRole
    let digest: [UInt8]
    /// Whether the secret was given in plaintext and is shorter than ``APIKeyRing/recommendedSecretLength``.
    public private(set) var isShort = false

    /// Creates a credential from a plaintext secret, which is hashed at once and not kept.
    public init(name: String, role: APIKeyRole, secret: String) {
        self.init(name: name, role: role, digest: Blake2b.hash(utf8: secret))
        self.isShort = secret.count < APIKeyRing.recommendedSecretLength
    }

    /// Creates a credential from the BLAKE2b-256 digest of its secret.
    public init(name: String, role: APIKeyRole, digest: [UInt8]) {
        precondition(digest.count == Blake2b.digestLength, "API key digests are BLAKE2b-256")
        self.name = name
        self.role = role
        self.digest = digest
    }

    /// The `API_KEYS` entry for this key in digest form: `name:role:blake2b:<hex>`.
    public var configurationEntry: String { "\(name):\(role.rawValue):blake2b:\(Hex.encode(digest))" }
}

/// The configured API keys and the constant-time check of a presented key against them.
public struct APIKeyRing: Sendable {
    /// Plaintext keys shorter than this are refused at start-up.
    public static let minimumSecretLength = 16
    /// Plaintext keys shorter than this are accepted with a warning at start-up: a valid key is admitted whatever
    /// its address's failures, so guessing is slowed by the failure budget per address only, not stopped.
    public static let recommendedSecretLength = 32
    /// The name given to the key in `API_KEY`.
    public static let defaultKeyName = "admin"

    /// The configured keys.
    public let credentials: [APIKeyCredential]
    private let digests: [[UInt8]]

    /// Creates a ring from credentials whose names are unique.
    public init(_ credentials: [APIKeyCredential]) {
        self.credentials = credentials
        self.digests = credentials.map(\.digest)
    }

    /// The caller whose key is `presented`, or `nil`.
    ///
    /// The presented key is hashed first, so its length does not shape the comparison, and then compared with
    /// every configured digest with no early exit: the time taken does not say which key, if any, matched.
    public func caller(presenting presented: String) -> Caller? {
        let digest = Blake2b.hash(utf8: presented)
        guard let index = ConstantTime.indexOfMatch(digest, in: digests) else { return nil }
        let credential = credentials[index]
        return Caller(name: credential.name, role: credential.role)
    }

    /// Reads `API_KEY` (one admin key) and `API_KEYS` (`name:role:secret` or `name:role:blake2b:<hex>`, comma separated).
    public static func parse(apiKey: String?, apiKeys: String?) throws -> APIKeyRing {
        var credentials: [APIKeyCredential] = []
        if let apiKey, !apiKey.isEmpty {
            guard apiKey.count >= minimumSecretLength else {
                throw ConfigurationError("API_KEY", "must be at least \(minimumSecretLength) characters")
            }
            credentials.append(APIKeyCredential(name: defaultKeyName, role: .admin, secret: apiKey))
        }
        for (position, entry) in (apiKeys ?? "").split(separator: ",").enumerated() {
            credentials.append(try parseEntry(entry.trimmingWhitespace(), position: position + 1))
        }
        guard !credentials.isEmpty else {
            throw ConfigurationError("API_KEY", "or API_KEYS must be set: no caller could use the service without a key")
        }
        var seen = Set<String>()
        for credential in credentials where !seen.insert(credential.name).inserted {
            throw ConfigurationError("API_KEYS", "names the key '\(credential.name)' twice")
        }
        if Set(credentials.map { Hex.encode($0.digest) }).count != credentials.count {
            throw ConfigurationError("API_KEYS", "holds the same secret under two names")
        }
        return APIKeyRing(credentials)
    }

    private static func parseEntry(_ entry: Substring, position: Int) throws -> APIKeyCredential {
        func invalid(_ problem: String) -> ConfigurationError {
            ConfigurationError("API_KEYS", "entry \(position) \(problem)")
        }
        let parts = entry.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw invalid("must be name:role:secret") }
        let name = String(parts[0])
        guard isValidName(name) else { throw invalid("has a name that is not 1-64 characters of [A-Za-z0-9._-]") }
        guard let role = APIKeyRole(rawValue: String(parts[1])) else {
            throw invalid("has role '\(parts[1])'; use admin or verifier")
        }
        let secret = parts[2]
        if secret.hasPrefix("blake2b:") {
            guard let digest = Hex.decode(secret.dropFirst("blake2b:".count)), digest.count == Blake2b.digestLength else {
                throw invalid("has a blake2b: digest that is not 64 hexadecimal characters")
            }
            return APIKeyCredential(name: name, role: role, digest: digest)
        }
        guard secret.count >= minimumSecretLength else { throw invalid("has a secret shorter than \(minimumSecretLength) characters") }
        return APIKeyCredential(name: name, role: role, secret: String(secret))
    }

    /// Whether `name` is acceptable as an API key name: 1-64 characters of `[A-Za-z0-9._-]`.
    public static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }
}

extension UInt8 {
    var isASCIIAlphanumeric: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}

extension StringProtocol {
    /// The text without leading and trailing white space.
    func trimmingWhitespace() -> Substring {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return Substring(self[first...last])
    }
}

extension APIKeyRing {
    /// A new API key secret: `tsk_` and 43 base62 characters carrying 256 random bits.
    public static func generateSecret() -> String {
        "tsk_" + SecureRandom.base62Secret()
    }
}
