import Foundation

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
