/// A token's human-readable prefix, such as `tsr`: 2 to 12 characters of `[a-z0-9]`.
public struct TokenPrefix: Sendable, Hashable, CustomStringConvertible {
    /// The prefix text, without the trailing underscore.
    public let rawValue: String

    /// Creates a prefix, or returns `nil` if `rawValue` is not 2-12 characters of `[a-z0-9]`.
    public init?(_ rawValue: String) {
        guard (2...12).contains(rawValue.utf8.count), rawValue.utf8.allSatisfy(Self.isAllowed) else { return nil }
        self.rawValue = rawValue
    }

    /// The default prefix, `tsr`.
    public static let `default` = TokenPrefix("tsr")!

    public var description: String { rawValue }

    static func isAllowed(_ character: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(character) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(character)
    }
}

/// A well-formed access token, `<prefix>_<43 base62 random><6 base62 CRC-32>`.
///
/// The value is a secret: `description` and `debugDescription` show only the display prefix, so a token
/// interpolated into a log line by mistake does not leak.
public struct AccessToken: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// Number of base62 characters carrying the 256 random bits.
    public static let randomLength = 43
    /// Number of base62 characters carrying the CRC-32.
    public static let checksumLength = 6
    /// Number of body characters shown in the display prefix.
    public static let displayedBodyLength = 4
    /// Length of the longest token (12-character prefix).
    public static let maximumLength = 12 + 1 + randomLength + checksumLength

    /// The whole token: the secret shown to its owner exactly once.
    public let secret: String
    /// The token's prefix.
    public let prefix: TokenPrefix

    /// Makes a new token with 256 bits from libsodium's CSPRNG.
    public static func generate(prefix: TokenPrefix) -> AccessToken {
        let random = SecureRandom.base62Secret()
        let unchecked = "\(prefix.rawValue)_\(random)"
        let checksum = Base62.encode(CRC32.checksum(unchecked.utf8), width: checksumLength)
        return AccessToken(secret: unchecked + checksum, prefix: prefix)
    }

    /// Parses `candidate`, returning `nil` unless it is well formed and its checksum matches.
    ///
    /// Any well-formed prefix is accepted, so tokens issued before a change of `TOKEN_PREFIX` still parse.
    public init?(parsing candidate: String) {
        // Reads the UTF-8 bytes where they are stored: this runs on every verification.
        guard let prefix = candidate.withUTF8Bytes(Self.prefix(ifWellFormed:)) else { return nil }
        self.init(secret: candidate, prefix: prefix)
    }

    /// The prefix of `bytes` if they are a well-formed token whose checksum matches, else `nil`.
    private static func prefix(ifWellFormed bytes: UnsafeBufferPointer<UInt8>) -> TokenPrefix? {
        guard bytes.count <= maximumLength,
            let separator = bytes.firstIndex(of: UInt8(ascii: "_")),
            let prefix = TokenPrefix(String(decoding: UnsafeBufferPointer(rebasing: bytes[..<separator]), as: UTF8.self))
        else { return nil }
        let body = bytes[(separator + 1)...]
        guard body.count == randomLength + checksumLength, body.allSatisfy(Base62.isDigit) else { return nil }
        let checksumStart = bytes.endIndex - checksumLength
        guard Base62.decode(bytes[checksumStart...]) == UInt64(CRC32.checksum(bytes[..<checksumStart])) else { return nil }
        return prefix
    }

    private init(secret: String, prefix: TokenPrefix) {
        self.secret = secret
        self.prefix = prefix
    }

    /// `<prefix>_` and the first four body characters: safe to store, list and log.
    public var displayPrefix: String {
        String(secret.prefix(prefix.rawValue.utf8.count + 1 + Self.displayedBodyLength))
    }

    public var description: String { "\(displayPrefix)…" }
    public var debugDescription: String { "AccessToken(\(displayPrefix)…)" }
}
