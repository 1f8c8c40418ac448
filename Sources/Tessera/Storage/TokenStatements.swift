import Foundation
import NIOCore
import PostgresNIO

/// A read of whole tokens, sent prepared by ``StatementClient``; its rows are ``PostgresTokenRepository/columns``.
protocol TokenStatement: PostgresPreparedStatement where Row == TokenRecord {}

extension TokenStatement {
    func decodeRow(_ row: PostgresRow) throws -> TokenRecord { try PostgresTokenRepository.record(row) }
}

extension PostgresBindings {
    /// Bindings of one value.
    static func only(_ value: some PostgresDynamicTypeEncodable) -> Self {
        var bindings = Self(capacity: 1)
        bindings.append(value)
        return bindings
    }
}

/// The tokens whose digest is any of `digests`: the verification lookup, for every caller in a batch at once.
struct TokensByDigest: TokenStatement {
    static let sql = "SELECT \(PostgresTokenRepository.columns) FROM tokens WHERE secret_hash = ANY($1)"
    static let name = StatementClient.name("by_digest", sql: sql)
    var digests: [ByteBuffer]

    func makeBindings() -> PostgresBindings { .only(digests) }
}

/// The token with `id`, if there is one.
struct TokenByID: TokenStatement {
    static let sql = "SELECT \(PostgresTokenRepository.columns) FROM tokens WHERE id = $1"
    static let name = StatementClient.name("by_id", sql: sql)
    var id: UUID

    func makeBindings() -> PostgresBindings { .only(id) }
}

/// A page of a user's tokens with `status`, newest first, after `cursor` when there is one.
///
/// A first page and a later one are two statements, so that each keeps one plan that reads the index from where
/// the page starts: one statement with an optional cursor would settle on a plan that filters the cursor row by
/// row, and a deep page would read every token before it.
struct FirstTokenPage: TokenStatement {
    static let sql = "SELECT \(PostgresTokenRepository.columns) FROM tokens WHERE user_id = $1 AND \(statusMatches) \(newestFirst)"
    static let name = StatementClient.name("first_page", sql: sql)
    var userID: String
    var status: TokenStatusFilter
    /// Most rows answered: the page's size and one more, to tell whether another page follows.
    var limit: Int

    /// Whether a token has the status `$2` asks for (`active`, `revoked`, `expired`, or anything for every token).
    static let statusMatches = """
        CASE $2::text
            WHEN 'active' THEN revoked_at IS NULL AND expires_at > now()
            WHEN 'revoked' THEN revoked_at IS NOT NULL
            WHEN 'expired' THEN revoked_at IS NULL AND expires_at <= now()
            ELSE true
        END
        """
    /// The listing's order, the index's, and its length `$3`.
    static let newestFirst = "ORDER BY created_at DESC, id DESC LIMIT $3"

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(userID)
        bindings.append(status.rawValue)
        bindings.append(limit)
        return bindings
    }
}

/// The page that follows `cursor` in a listing: ``FirstTokenPage`` from a cursor on.
struct NextTokenPage: TokenStatement {
    static let sql = """
        SELECT \(PostgresTokenRepository.columns) FROM tokens WHERE user_id = $1 AND \(FirstTokenPage.statusMatches)
          AND (created_at, id) < ('epoch'::timestamptz + $4::int8 * interval '1 microsecond', $5::uuid)
        \(FirstTokenPage.newestFirst)
        """
    static let name = StatementClient.name("next_page", sql: sql)
    var page: FirstTokenPage
    var cursor: TokenCursor

    func makeBindings() -> PostgresBindings {
        var bindings = page.makeBindings()
        bindings.append(cursor.createdAtMicroseconds)
        bindings.append(cursor.id)
        return bindings
    }
}

/// Spends one use of the token with `id` when its policy limits uses and one is left, restoring them first when its
/// refill period has turned; answers the uses left, or no row.
struct SpendUse: PostgresPreparedStatement {
    static let sql = """
        UPDATE tokens SET
            uses_left = (CASE WHEN refill_every IS NOT NULL AND date_trunc(refill_every, now(), 'UTC') > refilled_at
                              THEN refill_amount ELSE uses_left END) - 1,
            refilled_at = CASE WHEN refill_every IS NOT NULL AND date_trunc(refill_every, now(), 'UTC') > refilled_at
                               THEN date_trunc(refill_every, now(), 'UTC') ELSE refilled_at END
        WHERE id = $1 AND max_uses IS NOT NULL
          AND (CASE WHEN refill_every IS NOT NULL AND date_trunc(refill_every, now(), 'UTC') > refilled_at
                    THEN refill_amount ELSE uses_left END) > 0
        RETURNING uses_left
        """
    static let name = StatementClient.name("spend_use", sql: sql)
    var id: UUID

    func makeBindings() -> PostgresBindings { .only(id) }
    func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
}
