import Foundation
import TokenCrypto

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
