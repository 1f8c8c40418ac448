import Logging
import PostgresNIO
import Synchronization
import TokenCrypto

/// A pooled client that sends the statements run per request as prepared statements, parsed and planned once per
/// connection, until a transaction pooler shows that it does not keep them; from then on they go unnamed, as every
/// other statement does.
///
/// PostgreSQL parses and plans an unnamed statement on every round trip, which cost it more than running the lookup
/// or the list itself (docs/performance.md). PgBouncer in transaction mode without `max_prepared_statements` (which
/// versions before 1.21 do not have) hands each transaction any server connection, so a statement prepared on one
/// is missing on the next; its error (SQLSTATE `26000`, or `42P05` when another client prepared the name first)
/// comes before the statement runs, so it is sent again unnamed and nothing fails, and nothing runs twice.
final class StatementClient: Sendable {
    let client: PostgresClient
    /// Where the client leads, for the one warning when it turns out to be a pooler.
    let address: String
    private let prepares: Atomic<Bool>

    /// A client that prepares statements when `prepares`, and sends them unnamed otherwise.
    init(client: PostgresClient, address: String, prepares: Bool) {
        self.client = client
        self.address = address
        self.prepares = Atomic(prepares)
    }

    /// Whether statements are still sent prepared.
    var isPreparing: Bool { prepares.load(ordering: .relaxed) }

    /// Every row `statement` answers, decoded.
    ///
    /// PostgresNIO keeps what it learnt when it prepared a statement on a connection, a failed preparation included,
    /// for as long as the connection lives. So a connection on which PostgreSQL refused a prepared statement is
    /// closed (the pool opens another when one is next needed): a statement left stale by a schema change
    /// (SQLSTATE `0A000`) is then sent once more unnamed, any other refusal reaches the caller as it would have
    /// unnamed.
    func rows<Statement: PostgresPreparedStatement>(_ statement: Statement, logger: Logger) async throws -> [Statement.Row] {
        if isPreparing {
            do {
                return try await client.withConnection { connection in
                    do {
                        return try await Self.collect(connection.execute(statement, logger: logger))
                    } catch let error as PSQLError where error.serverInfo != nil && !Self.isMissingStatement(error) {
                        try? await connection.close()
                        throw error
                    }
                }
            } catch let error as PSQLError where Self.isMissingStatement(error) {
                stopPreparing(after: error, logger: logger)
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "0A000" {
                logger.notice("a prepared statement went stale after a schema change; its connection is replaced", metadata: ["database": "\(address)"])
            }
        }
        let rows = try await client.query(PostgresQuery(unsafeSQL: Statement.sql, binds: try statement.makeBindings()), logger: logger)
        return try await Self.collect(rows.map { try statement.decodeRow($0) })
    }

    /// Sends every later statement unnamed, and says so once.
    private func stopPreparing(after error: PSQLError, logger: Logger) {
        guard prepares.exchange(false, ordering: .relaxed) else { return }
        logger.warning(
            """
            PostgreSQL did not keep a prepared statement, so a transaction pooler sits in between: \
            statements go unnamed from now on (set DATABASE_PREPARED_STATEMENTS=off to start that way)
            """,
            metadata: ["database": "\(address)", "sqlState": "\(error.serverInfo?[.sqlState] ?? "")"]
        )
    }

    /// Whether PostgreSQL refused a prepared statement's name: unknown on this server connection (`26000`), or
    /// already taken on it (`42P05`).
    private static func isMissingStatement(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state == "26000" || state == "42P05"
    }

    private static func collect<Row>(_ rows: AsyncThrowingMapSequence<PostgresRowSequence, Row>) async throws -> [Row] {
        var collected: [Row] = []
        for try await row in rows { collected.append(row) }
        return collected
    }

    /// A statement name that changes with its SQL, so that two versions of Tessera behind one pooler never run each
    /// other's statement under one name.
    static func name(_ label: String, sql: String) -> String {
        "tessera_\(label)_\(Hex.encode(Array(Blake2b.hash(utf8: sql).prefix(6))))"
    }
}
