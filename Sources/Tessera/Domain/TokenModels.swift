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
