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

/// The `status` filter of a token listing.
public enum TokenStatusFilter: String, Sendable, CaseIterable {
    /// Neither revoked nor expired.
    case active
    /// Revoked.
    case revoked
    /// Expired and not revoked.
    case expired
    /// Every token.
    case all
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

/// What the repository needs to store a new token.
public struct NewToken: Sendable {
    /// The user the token is for.
    public var userID: String
    /// What the token may do.
    public var scopes: [String]
    /// An optional label.
    public var name: String?
    /// The keyed digest of the secret.
    public var digest: TokenDigest
    /// `<prefix>_` and the first four body characters.
    public var displayPrefix: String
    /// Lifetime from the moment of insertion, in minutes.
    public var lifetimeMinutes: Int
    /// The API key name that created it.
    public var createdBy: String
    /// Its audiences, networks and data.
    public var policy = TokenPolicy()
}

/// Changes to a token's editable fields; `nil` leaves a field as it is, and `.some(nil)` clears an optional one.
public struct TokenChanges: Sendable, Equatable {
    public var name: String??
    /// New scopes, each covered by the token's current ones: scopes can only be narrowed.
    public var scopes: [String]?
    /// A new expiry, no later than the current one: a token's life can only be shortened.
    public var expiresAt: Date?
    public var audiences: [String]??
    public var allowedNetworks: [IPNetwork]??
    public var meta: String??
    public var enabled: Bool?
    /// A new limit on uses, which also resets the uses left to it; `.some(nil)` lifts the limit (and any refill).
    public var maxUses: Int??
    public var refill: UsageRefill??
    /// A new rate limit of its own, taking effect at once; `.some(nil)` lifts it.
    public var rateLimit: RateLimitPolicy??

    /// Creates an empty set of changes.
    public init() {}

    /// The API names of the fields this changes, sorted.
    public var fieldNames: [String] {
        [
            name.map { _ in "name" }, scopes.map { _ in "scopes" }, expiresAt.map { _ in "expiresAt" }, audiences.map { _ in "audiences" },
            allowedNetworks.map { _ in "allowedCidrs" }, meta.map { _ in "meta" }, enabled.map { _ in "enabled" },
            maxUses.map { _ in "maxUses" }, refill.map { _ in "refill" }, rateLimit.map { _ in "rateLimit" },
        ].compactMap { $0 }.sorted()
    }

    /// Why these changes may not be made to `record` at `now`, field by field; empty when they may.
    public func refusals(for record: TokenRecord, at now: Date) -> [(field: String, message: String)] {
        var refusals: [(field: String, message: String)] = []
        for (index, scope) in (scopes ?? []).enumerated() where !Scope.covers(record.scopes, scope) {
            refusals.append(("scopes[\(index)]", "is not covered by the token's scopes; scopes can only be narrowed"))
        }
        if let expiresAt {
            if expiresAt > record.expiresAt {
                refusals.append(("expiresAt", "is later than the token's expiry; a token's life can only be shortened"))
            } else if expiresAt <= now {
                refusals.append(("expiresAt", "must be in the future; revoke the token to end it now"))
            }
        }
        return refusals
    }

    /// Whether these changes set the token's usage limit, and so its uses left: `maxUses` given, or a refill given
    /// to a token without a limit (which it then limits to the refill's amount).
    public func resetsUsesLeft(of record: TokenRecord) -> Bool {
        if maxUses != nil { return true }
        if case .some(.some) = refill { return record.policy.maxUses == nil }
        return false
    }

    /// Whether these changes start the refill period afresh: the limit or the refill changed.
    public var restartsRefillPeriod: Bool { maxUses != nil || refill != nil }

    /// `record` with these changes made.
    public func applied(to record: TokenRecord) -> TokenRecord {
        var record = record
        if let name { record.name = name }
        if let scopes { record.scopes = scopes }
        if let expiresAt { record.expiresAt = min(record.expiresAt, expiresAt) }
        if let audiences { record.policy.audiences = audiences }
        if let allowedNetworks { record.policy.allowedNetworks = allowedNetworks }
        if let meta { record.policy.meta = meta }
        if let enabled { record.policy.enabled = enabled }
        if let rateLimit { record.policy.rateLimit = rateLimit }
        if let maxUses {
            record.policy.maxUses = maxUses
            record.usesLeft = maxUses
            if maxUses == nil { record.policy.refill = nil }
        }
        if let refill {
            record.policy.refill = refill
            // A refill alone limits the token to its amount.
            if let refill, record.policy.maxUses == nil {
                record.policy.maxUses = refill.amount
                record.usesLeft = refill.amount
            }
        }
        return record
    }
}

/// What the repository's `update(id:with:by:logger:)` found.
public enum UpdateOutcome: Sendable {
    /// The token now reads as returned.
    case updated(TokenRecord)
    /// No token has that id.
    case notFound
    /// The token is revoked; nothing about it can change.
    case revoked
    /// The changes break the rules (scopes only narrow, expiry only shortens): nothing changed.
    case refused([(field: String, message: String)])
}

/// What the repository's `rotate(id:)` found.
public enum RotationOutcome: Sendable, Equatable {
    /// The old token now expires within the grace period; this is the new token's record.
    case rotated(TokenRecord)
    /// No token has that id.
    case notFound
    /// The token is revoked or expired, so there is nothing to rotate.
    case notActive(TokenStatus)
    /// The token was rotated before (it may still be in its grace period); rotate its replacement instead.
    case alreadyRotated
}

/// Why a token could not be rotated.
public enum RotationError: Error, Equatable {
    /// No token has that id.
    case notFound
    /// The token is revoked or expired.
    case notActive(TokenStatus)
    /// The token was rotated before.
    case alreadyRotated
}

/// A position in a listing ordered newest first: the last token's creation time and id.
public struct TokenCursor: Sendable, Hashable {
    /// The last token's creation time in microseconds since 1970.
    public var createdAtMicroseconds: Int64
    /// The last token's id, which breaks ties.
    public var id: UUID

    /// The text form handed to clients as `nextCursor`: `<microseconds>_<id>`.
    public var encoded: String { "\(createdAtMicroseconds)_\(id.uuidString.lowercased())" }

    /// Decodes a `nextCursor` value, or returns `nil` if it is not one.
    public init?(encoded: String) {
        let parts = encoded.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...18).contains(parts[0].utf8.count),
            parts[0].utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let micros = Int64(parts[0]),
            parts[1] == parts[1].lowercased(), let id = UUID(uuidString: String(parts[1]))
        else { return nil }
        self.init(createdAtMicroseconds: micros, id: id)
    }

    /// Creates a cursor.
    public init(createdAtMicroseconds: Int64, id: UUID) {
        self.createdAtMicroseconds = createdAtMicroseconds
        self.id = id
    }
}

/// One page of a listing.
public struct TokenPage: Sendable {
    /// The tokens on this page, newest first.
    public var tokens: [TokenRecord]
    /// Where the next page starts, or `nil` on the last page.
    public var nextCursor: TokenCursor?
}

/// What `revoke(id:)` found.
public enum RevocationOutcome: Sendable, Equatable {
    /// The token was active or expired and is now revoked, with the ids of the other tokens of its rotation lineage
    /// (those it replaced and those that replaced it) that this revocation revoked.
    case revoked(TokenRecord, lineage: [UUID])
    /// The token had been revoked before; nothing changed.
    case alreadyRevoked(TokenRecord)
    /// No token has that id.
    case notFound
}

extension Date {
    /// The date `microseconds` after 1970-01-01T00:00:00Z.
    init(microsecondsSince1970 microseconds: Int64) {
        self.init(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }

    /// Whole microseconds since 1970, rounded to the nearest.
    var microsecondsSince1970: Int64 { Int64((timeIntervalSince1970 * 1_000_000).rounded()) }
}
