import Foundation

/// One audit row: who did what to which token, and when.
public struct AuditEvent: Sendable, Equatable {
    /// Increasing id; the listing's order and cursor.
    public var id: Int64
    /// When the change was committed.
    public var occurredAt: Date
    /// Who made the change: an API key name, `cli:<login>` for the command line, or a leak reporter.
    public var actor: String
    /// What happened: `token.create`, `token.revoke`, `token.rotate`, `token.update`, `tokens.revoke` or `tokens.purge`.
    public var action: String
    /// The token changed.
    public var tokenID: UUID?
    /// The token's user.
    public var userID: String?
    /// What else the change recorded, such as the fields an edit changed or the URL a leak was reported at.
    public var details: [String: String] = [:]
}

/// One page of audit events, newest first.
public struct AuditPage: Sendable {
    /// The events on this page.
    public var events: [AuditEvent]
    /// The id to pass as `cursor` for the next page, or `nil` on the last page.
    public var nextCursor: Int64?
}

/// The filters of an audit listing.
public struct AuditQuery: Sendable, Equatable {
    /// Only events about this token.
    public var tokenID: UUID?
    /// Only events about this user's tokens.
    public var userID: String?
    /// Page size.
    public var limit: Int
    /// Only events older than this id.
    public var before: Int64?

    /// Creates a query; every filter is optional.
    public init(tokenID: UUID? = nil, userID: String? = nil, limit: Int, before: Int64? = nil) {
        self.tokenID = tokenID
        self.userID = userID
        self.limit = limit
        self.before = before
    }
}
