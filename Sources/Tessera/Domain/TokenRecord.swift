import Foundation
import TokenCrypto

/// Where a token stands at a given moment.
public enum TokenStatus: String, Codable, Sendable, CaseIterable {
    /// Neither revoked nor past its expiry.
    case active
    /// Revoked by an admin; revocation outranks expiry.
    case revoked
    /// Past its expiry and never revoked.
    case expired
}

/// A stored token: metadata plus the digest of its secret, never the secret itself.
public struct TokenRecord: Sendable, Equatable {
    /// The token's id.
    public var id: UUID
    /// The user the token was issued for.
    public var userID: String
    /// What the token may do.
    public var scopes: [String]
    /// The keyed digest of the secret, with the id of the key that made it.
    public var digest: TokenDigest
    /// `<prefix>_` and the first four body characters.
    public var displayPrefix: String
    /// A label chosen by the admin who created it.
    public var name: String?
    /// Creation time in whole microseconds since 1970, exactly as PostgreSQL stores it; the pagination key.
    public var createdAtMicroseconds: Int64
    /// When the token stops being valid.
    public var expiresAt: Date
    /// When it was revoked, if it was.
    public var revokedAt: Date?
    /// When it last verified successfully, if ever.
    public var lastUsedAt: Date?
    /// The API key name that created it.
    public var createdBy: String
    /// The token this one replaced, when a rotation issued it.
    public var replaces: UUID? = nil
    /// The token that replaced this one, when it was rotated.
    public var replacedBy: UUID? = nil
    /// Who may verify it, from where, whether it is paused, and what data it carries.
    public var policy = TokenPolicy()
    /// Uses left when its policy limits them, as last read.
    public var usesLeft: Int? = nil
    /// What is left of its own rate limit, as the verification that read it left it.
    public var rateLimitDecision: RateLimitDecision? = nil

    /// Creation time.
    public var createdAt: Date { Date(microsecondsSince1970: createdAtMicroseconds) }

    /// The token's status at `now`.
    public func status(at now: Date) -> TokenStatus {
        if revokedAt != nil { return .revoked }
        return expiresAt <= now ? .expired : .active
    }

    /// Where a listing continues after this token.
    public var cursor: TokenCursor { TokenCursor(createdAtMicroseconds: createdAtMicroseconds, id: id) }
}

extension TokenRecord {
    /// `token` as just stored, under the id, creation time and expiry the store gave it.
    init(_ token: NewToken, id: UUID, createdAtMicroseconds: Int64, expiresAt: Date) {
        self.init(
            id: id, userID: token.userID, scopes: token.scopes, digest: token.digest, displayPrefix: token.displayPrefix, name: token.name,
            createdAtMicroseconds: createdAtMicroseconds, expiresAt: expiresAt, revokedAt: nil, lastUsedAt: nil, createdBy: token.createdBy,
            policy: token.policy, usesLeft: token.policy.maxUses
        )
    }
}

/// What an issuer may say about one token beyond its scopes and expiry; every part is optional.
public struct TokenPolicy: Sendable, Equatable {
    /// Names of the API keys that may verify the token; `nil` lets any verifier.
    public var audiences: [String]?
    /// Networks the end client must come from; `nil` means anywhere.
    public var allowedNetworks: [IPNetwork]?
    /// Data the issuer attached, as a compact JSON object, returned by verification and never interpreted.
    public var meta: String?
    /// Whether the token may be used now; a paused token answers `DISABLED` until it is resumed.
    public var enabled: Bool
    /// How many successful verifications the token allows, or `nil` for no limit.
    public var maxUses: Int?
    /// How its uses are restored, if they are.
    public var refill: UsageRefill?
    /// How often it may be verified (named ``rateLimitName``), or `nil` for no limit of its own.
    public var rateLimit: RateLimitPolicy?

    /// Creates a policy; the defaults restrict nothing.
    public init(
        audiences: [String]? = nil, allowedNetworks: [IPNetwork]? = nil, meta: String? = nil, enabled: Bool = true, maxUses: Int? = nil,
        refill: UsageRefill? = nil, rateLimit: RateLimitPolicy? = nil
    ) {
        self.audiences = audiences
        self.allowedNetworks = allowedNetworks
        self.meta = meta
        self.enabled = enabled
        self.maxUses = maxUses
        self.refill = refill
        self.rateLimit = rateLimit
    }

    /// The name of every token's own rate limit, in `RateLimit-Policy` and `RateLimit`.
    public static let rateLimitName = "token"
    /// The policy naming where tokens' own budgets are kept; each token spends under its own ``rateLimit``.
    public static let rateLimitPartition = RateLimitPolicy(name: rateLimitName, quota: 1, window: 1)

    /// A token's own rate limit of `quota` verifications per `window` seconds.
    public static func rateLimit(quota: Int, window: Int) -> RateLimitPolicy {
        RateLimitPolicy(name: rateLimitName, quota: quota, window: window)
    }

    /// Most audiences, and most networks, one token may name.
    public static let maximumEntries = 32
    /// Largest `meta`, in bytes of compact JSON.
    public static let maximumMetaBytes = 4096
    /// What `maxUses` and a refill's amount may be.
    public static let usesRange = 1...1_000_000_000
}

/// Uses given back to a usage-limited token: at the start of every `period` (UTC), its uses left become `amount`.
public struct UsageRefill: Sendable, Equatable {
    /// A calendar period in UTC.
    public enum Period: String, Sendable, CaseIterable {
        case hour, day, month
    }

    /// Uses left after each refill.
    public var amount: Int
    /// How often.
    public var period: Period

    /// Creates a refill.
    public init(amount: Int, every period: Period) {
        self.amount = amount
        self.period = period
    }
}

extension Date {
    /// The date `microseconds` after 1970-01-01T00:00:00Z.
    init(microsecondsSince1970 microseconds: Int64) {
        self.init(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }

    /// Whole microseconds since 1970, rounded to the nearest.
    var microsecondsSince1970: Int64 { Int64((timeIntervalSince1970 * 1_000_000).rounded()) }
}
