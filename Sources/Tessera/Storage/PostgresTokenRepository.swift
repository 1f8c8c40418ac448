import Foundation
import Logging
import NIOCore
import PostgresNIO
import Metrics
import TokenCrypto

/// Tokens and their audit trail in PostgreSQL, through a pooled `PostgresClient`.
public struct PostgresTokenRepository: TokenRepository {
    /// The primary's pool, sending the statements run per request prepared (``StatementClient``).
    let statements: StatementClient
    /// The same pool, for the statements sent unnamed.
    var client: PostgresClient { statements.client }
    /// Longest wait for an answer, a free connection included; past it the call throws ``DeadlineExceeded``.
    let timeout: Duration

    /// Verification lookups, coalesced into one statement per round trip under load.
    private let lookups: LookupBatcher<[UInt8], TokenRecord>
    /// Creations, coalesced into one statement, and one commit, per round trip under load.
    private let creations: LookupBatcher<PendingCreation, Result<TokenRecord, any Error>>
    /// Streaming replicas that verification lookups read when they can be trusted to, if any.
    private let replicas: ReadReplicas?

    /// Creates a repository over a running client; verification lookups read `replicas` when they can.
    ///
    /// One lookup statement at a time per server, with the lookups that arrive meanwhile sharing the next one,
    /// measured fastest (docs/performance.md). The price: a lookup stuck on a broken connection holds every
    /// verification on this instance until the timeout.
    ///
    /// With `preparesStatements`, the lookup, spending a use and the reads of listings and single tokens are prepared once per
    /// connection until a transaction pooler shows it does not keep them (``StatementClient``).
    public init(client: PostgresClient, timeout: Duration = .seconds(5), replicas: ReadReplicas? = nil, preparesStatements: Bool = true) {
        self.init(statements: StatementClient(client: client, address: "primary", prepares: preparesStatements), timeout: timeout, replicas: replicas)
    }

    /// Creates a repository over `statements`, which other stores on the same client may share.
    init(statements: StatementClient, timeout: Duration = .seconds(5), replicas: ReadReplicas? = nil) {
        self.statements = statements
        self.timeout = timeout
        self.lookups = Self.lookupBatcher(statements: statements, timeout: timeout)
        self.creations = Self.creationBatcher(client: statements.client, timeout: timeout)
        self.replicas = replicas
    }

    /// The batched verification lookup on `client`'s server.
    static func lookupBatcher(statements: StatementClient, timeout: Duration) -> LookupBatcher<[UInt8], TokenRecord> {
        LookupBatcher(concurrency: 1, maximumKeys: 256, timeout: timeout, timeoutMessage: timeoutMessage(timeout)) { digests, logger in
            let records = try await statements.rows(TokensByDigest(digests: digests.map { ByteBuffer(bytes: $0) }), logger: logger)
            return Dictionary(records.map { ($0.digest.bytes, $0) }) { _, last in last }
        }
    }

    /// Counts operations waiting for or holding a pooled connection, when metrics are on.
    var inFlight: Meter?

    /// Runs `operation` under the repository's deadline, so a database outage cannot hold a request forever.
    private func bounded<Result: Sendable>(_ operation: @escaping @Sendable () async throws -> Result) async throws -> Result {
        try await counted { try await StorageError.translating { try await withDeadline(timeout, Self.timeoutMessage(timeout), operation: operation) } }
    }

    /// Which tokens a change touches, so that this instance reads the primary for them at once, without waiting for
    /// the invalidation feed.
    private enum Touched {
        case token(UUID)
        case everyToken
        /// The caller notes the tokens itself, from what the change returned.
        case notedByCaller
    }

    /// Runs `body` in a bounded transaction that changes the `touched` tokens, then notes them as changed.
    private func changing<Result: Sendable>(
        _ touched: Touched, logger: Logger, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        defer {
            switch touched {
            case .token(let id): replicas?.changes.tokenChanged(id: id)
            case .everyToken: replicas?.changes.allTokensChanged()
            case .notedByCaller: break
            }
        }
        return try await bounded {
            try await client.inTransaction(logger: logger) { connection in
                // Every change takes the invalidation clock's lock before any token's: changes are serialized, so a
                // revocation sees every rotation committed before it, and no two changes wait on each other's rows.
                try await connection.query("SELECT seq FROM invalidation_clock FOR UPDATE", logger: logger)
                return try await body(connection)
            }
        }
    }

    /// Runs `operation` counted in ``inFlight``.
    private func counted<Result>(_ operation: () async throws -> Result) async throws -> Result {
        inFlight?.increment()
        defer { inFlight?.decrement() }
        return try await operation()
    }

    /// What a caller is told when PostgreSQL did not answer in time.
    private static func timeoutMessage(_ timeout: Duration) -> String {
        "PostgreSQL did not answer within \(timeout)"
    }

    /// The columns every token query selects, in the order ``record(_:)`` reads them.
    static let columns = """
        id, user_id, scopes, secret_hash, hash_key_id, display_prefix, name,
        (extract(epoch FROM created_at) * 1000000)::int8, expires_at, revoked_at, last_used_at, created_by, replaces, replaced_by,
        audiences, allowed_cidrs, meta, enabled, max_uses, uses_left, refill_amount, refill_every, rate_limit_quota, rate_limit_window
        """

    /// One statement, so one round trip: the token and its `token.create` audit row are inserted together or not at
    /// all. Creations that arrive while others are in flight share the next statement, and so its commit.
    public func create(_ token: NewToken, logger: Logger) async throws -> TokenRecord {
        let pending = PendingCreation(token: token)
        return try await counted {
            try await StorageError.translating {
                guard let outcome = try await creations.value(forAnyOf: [pending], logger: logger) else { throw StorageError.missingRow }
                return try outcome.get()
            }
        }
    }

    /// The batched creation on `client`'s server.
    static func creationBatcher(client: PostgresClient, timeout: Duration) -> LookupBatcher<PendingCreation, Result<TokenRecord, any Error>> {
        LookupBatcher(concurrency: 2, maximumKeys: 64, timeout: timeout, timeoutMessage: timeoutMessage(timeout)) { batch, logger in
            try await create(batch, client: client, logger: logger)
        }
    }

    /// Creates every token of `batch` in one statement. A token whose digest is taken is left out by the statement
    /// itself; if the statement fails on a value of one token (a data or constraint error), each token is inserted
    /// alone, so that one caller's bad value is no other caller's. Any other failure (the database down, a timeout)
    /// is every caller's.
    static func create(_ batch: [PendingCreation], client: PostgresClient, logger: Logger) async throws
        -> [PendingCreation: Result<TokenRecord, any Error>]
    {
        do {
            return try await insert(batch, client: client, logger: logger)
        } catch let error as PSQLError where batch.count > 1 && isAboutOneValue(error) {
            var outcomes: [PendingCreation: Result<TokenRecord, any Error>] = [:]
            for pending in batch {
                // Answered callers are not left with a token created after their answer.
                try Task.checkCancellation()
                do {
                    outcomes[pending] = try await insert([pending], client: client, logger: logger)[pending]
                } catch let error as PSQLError where isAboutOneValue(error) {
                    outcomes[pending] = .failure(error)
                }
            }
            return outcomes
        }
    }

    /// Whether PostgreSQL refused a statement for a value in it (SQLSTATE classes 22 and 23) rather than for itself.
    private static func isAboutOneValue(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("22") || state.hasPrefix("23")
    }

    /// Inserts `batch` and its `token.create` audit rows in one statement, reading back only what PostgreSQL decides;
    /// a token whose digest is already stored is not inserted, and answered ``StorageError/duplicateDigest``.
    static func insert(_ batch: [PendingCreation], client: PostgresClient, logger: Logger) async throws
        -> [PendingCreation: Result<TokenRecord, any Error>]
    {
        // Each digest once: of two creations with one digest, the later is a duplicate before it is sent.
        var outcomes: [PendingCreation: Result<TokenRecord, any Error>] = [:]
        var byDigest: [[UInt8]: PendingCreation] = [:]
        for pending in batch {
            outcomes[pending] = .failure(StorageError.duplicateDigest)
            if byDigest[pending.token.digest.bytes] == nil { byDigest[pending.token.digest.bytes] = pending }
        }
        let batch = batch.filter { byDigest[$0.token.digest.bytes] == $0 }
        var sql = PostgresQuery.StringInterpolation(literalCapacity: 600 + 120 * batch.count, interpolationCount: 19 * batch.count)
        sql.appendLiteral("""
            WITH created AS (
                INSERT INTO tokens (user_id, scopes, secret_hash, hash_key_id, display_prefix, name, expires_at, created_by,
                                    audiences, allowed_cidrs, meta, enabled, max_uses, uses_left, refill_amount, refill_every,
                                    refilled_at, rate_limit_quota, rate_limit_window)
                VALUES
            """)
        for (index, pending) in batch.enumerated() {
            let token = pending.token
            sql.appendLiteral(index == 0 ? " (" : ", (")
            sql.appendInterpolation(token.userID); sql.appendLiteral(", ")
            sql.appendInterpolation(token.scopes); sql.appendLiteral(", ")
            sql.appendInterpolation(ByteBuffer(bytes: token.digest.bytes)); sql.appendLiteral(", ")
            sql.appendInterpolation(token.digest.keyID); sql.appendLiteral(", ")
            sql.appendInterpolation(token.displayPrefix); sql.appendLiteral(", ")
            sql.appendInterpolation(token.name); sql.appendLiteral(", now() + make_interval(mins => ")
            sql.appendInterpolation(token.lifetimeMinutes); sql.appendLiteral("::int4), ")
            sql.appendInterpolation(token.createdBy); sql.appendLiteral(", ")
            sql.appendInterpolation(token.policy.audiences); sql.appendLiteral("::text[], ")
            sql.appendInterpolation(token.policy.allowedNetworks?.map(\.text)); sql.appendLiteral("::text[], ")
            sql.appendInterpolation(token.policy.meta); sql.appendLiteral(", ")
            sql.appendInterpolation(token.policy.enabled); sql.appendLiteral(", ")
            sql.appendInterpolation(token.policy.maxUses); sql.appendLiteral(", ")
            sql.appendInterpolation(token.policy.maxUses); sql.appendLiteral(", ")
            sql.appendInterpolation(token.policy.refill?.amount); sql.appendLiteral(", ")
            sql.appendInterpolation(token.policy.refill?.period.rawValue); sql.appendLiteral(", date_trunc(")
            sql.appendInterpolation(token.policy.refill?.period.rawValue ?? "hour"); sql.appendLiteral(", now(), 'UTC'), ")
            sql.appendInterpolation(token.policy.rateLimit?.quota); sql.appendLiteral(", ")
            sql.appendInterpolation(token.policy.rateLimit?.window); sql.appendLiteral(")")
        }
        sql.appendLiteral("""

                ON CONFLICT (secret_hash) DO NOTHING
                RETURNING id, (extract(epoch FROM created_at) * 1000000)::int8 AS created_at_us, expires_at, user_id, created_by, secret_hash
            ), audited AS (
                INSERT INTO audit_events (actor, action, token_id, user_id)
                SELECT created_by, 'token.create', id, user_id FROM created
            )
            SELECT secret_hash, id, created_at_us, expires_at FROM created
            """)
        let rows = try await client.query(PostgresQuery(stringInterpolation: sql), logger: logger)
        // Digests are unique in the table, so each row names the one creation it answers; a creation without a row
        // found its digest taken.
        for try await row in rows {
            var cells = Cells(row)
            let hash: ByteBuffer = try cells.next()
            guard let pending = byDigest[Array(buffer: hash)] else { throw StorageError.missingRow }
            outcomes[pending] = .success(
                TokenRecord(pending.token, id: try cells.next(), createdAtMicroseconds: try cells.next(), expiresAt: try cells.next()))
        }
        return outcomes
    }

    public func token(id: UUID, logger: Logger) async throws -> TokenRecord? {
        try await bounded {
            try await statements.rows(TokenByID(id: id), logger: logger).first
        }
    }

    /// From a replica when one is usable and its answer cannot be missing a change; else from the primary.
    public func token(matchingAnyOf digests: [TokenDigest], logger: Logger) async throws -> TokenRecord? {
        let keys = digests.map(\.bytes)
        if let replica = replicas?.reader() {
            // A replica that fails, or does not know the token (it may be new), or holds a token changed within its
            // lag bound, is not the last word: the primary is.
            if let found = try? await replica.lookups.value(forAnyOf: keys, logger: logger), replicas?.changes.isSettled(found.id) == true {
                replica.reads.increment()
                return found
            }
        }
        return try await counted { try await StorageError.translating { try await lookups.value(forAnyOf: keys, logger: logger) } }
    }

    public func tokens(
        userID: String,
        status: TokenStatusFilter,
        limit: Int,
        after cursor: TokenCursor?,
        logger: Logger
    ) async throws -> TokenPage {
        try await bounded {
            let page = FirstTokenPage(userID: userID, status: status, limit: limit + 1)
            var records = if let cursor {
                try await statements.rows(NextTokenPage(page: page, cursor: cursor), logger: logger)
            } else {
                try await statements.rows(page, logger: logger)
            }
            let hasMore = records.count > limit
            if hasMore { records.removeLast() }
            return TokenPage(tokens: records, nextCursor: hasMore ? records.last?.cursor : nil)
        }
    }

    public func revoke(id: UUID, by actor: String, details: [String: String], logger: Logger) async throws -> RevocationOutcome {
        let outcome = try await changing(.token(id), logger: logger) { connection -> RevocationOutcome in
            let updated = try await connection.query(
                "UPDATE tokens SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL RETURNING \(unescaped: Self.columns)",
                logger: logger
            )
            if let record = try await Self.decodeRecords(updated).first {
                try await Self.recordAudit(
                    action: "token.revoke", actor: actor, tokenID: record.id, userID: record.userID, details: details, on: connection, logger: logger)
                try await Self.announceChange(of: record.id, on: connection, logger: logger)
                // The rest of its rotation lineage, both ways: holding the clock's lock, this sees every rotation
                // committed before it, and no rotation can add to the lineage until it commits.
                let lineage = try await connection.query(
                    """
                    WITH RECURSIVE lineage(id) AS (
                        SELECT \(id)::uuid
                        UNION
                        SELECT linked.id FROM lineage
                        JOIN tokens AS member ON member.id = lineage.id
                        JOIN tokens AS linked ON linked.id IN (member.replaces, member.replaced_by)
                    )
                    UPDATE tokens SET revoked_at = now() FROM lineage
                    WHERE tokens.id = lineage.id AND tokens.revoked_at IS NULL
                    RETURNING tokens.id, tokens.user_id
                    """,
                    logger: logger
                )
                var members: [(id: UUID, userID: String)] = []
                for try await member in lineage.decode((UUID, String).self) { members.append(member) }
                for member in members {
                    try await Self.recordAudit(
                        action: "token.revoke", actor: actor, tokenID: member.id, userID: member.userID,
                        details: details.merging(["revokedWith": id.lowercasedString]) { _, lineage in lineage }, on: connection, logger: logger)
                    try await Self.announceChange(of: member.id, on: connection, logger: logger)
                }
                return .revoked(record, lineage: members.map(\.id))
            }
            let existing = try await connection.query("SELECT \(unescaped: Self.columns) FROM tokens WHERE id = \(id)", logger: logger)
            guard let record = try await Self.decodeRecords(existing).first else { return .notFound }
            return .alreadyRevoked(record)
        }
        if case .revoked(_, let lineage) = outcome { for member in lineage { replicas?.changes.tokenChanged(id: member) } }
        return outcome
    }

    public func update(id: UUID, with changes: TokenChanges, by actor: String, logger: Logger) async throws -> UpdateOutcome {
        try await changing(.token(id), logger: logger) { connection in
            // Holding the clock's lock, no other change to this token can come between the check and the update.
            let current = try await connection.query("SELECT \(unescaped: Self.columns) FROM tokens WHERE id = \(id)", logger: logger)
            guard let record = try await Self.decodeRecords(current).first else { return .notFound }
            let now = Date()
            guard record.revokedAt == nil else { return .revoked }
            let refusals = changes.refusals(for: record, at: now)
            guard refusals.isEmpty else { return .refused(refusals) }
            let updated = changes.applied(to: record)
            let rows = try await connection.query(
                """
                UPDATE tokens SET name = \(updated.name), scopes = \(updated.scopes), expires_at = LEAST(expires_at, \(updated.expiresAt)),
                    audiences = \(updated.policy.audiences)::text[], allowed_cidrs = \(updated.policy.allowedNetworks?.map(\.text))::text[],
                    meta = \(updated.policy.meta), enabled = \(updated.policy.enabled), max_uses = \(updated.policy.maxUses),
                    uses_left = CASE WHEN \(changes.resetsUsesLeft(of: record)) THEN \(updated.policy.maxUses) ELSE uses_left END,
                    refill_amount = \(updated.policy.refill?.amount), refill_every = \(updated.policy.refill?.period.rawValue),
                    refilled_at = CASE WHEN \(changes.restartsRefillPeriod)
                        THEN date_trunc(\(updated.policy.refill?.period.rawValue ?? "hour"), now(), 'UTC') ELSE refilled_at END,
                    rate_limit_quota = \(updated.policy.rateLimit?.quota), rate_limit_window = \(updated.policy.rateLimit?.window)
                WHERE id = \(id)
                RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            )
            guard let stored = try await Self.decodeRecords(rows).first else { throw StorageError.missingRow }
            try await Self.recordAudit(
                action: "token.update", actor: actor, tokenID: id, userID: stored.userID,
                details: ["fields": changes.fieldNames.joined(separator: ",")], on: connection, logger: logger)
            try await Self.announceChange(of: id, on: connection, logger: logger)
            return .updated(stored)
        }
    }

    /// One statement, so the decision and the decrement cannot be split by another instance's: PostgreSQL
    /// re-evaluates the condition on the row as a concurrent update left it.
    public func spendUse(of id: UUID, logger: Logger) async throws -> Int? {
        try await bounded {
            try await statements.rows(SpendUse(id: id), logger: logger).first
        }
    }

    /// One statement: the revocations, their entries in the invalidation log (numbered after the clock, whose lock
    /// ``changing(_:logger:_:)`` holds) and the audit row.
    public func revokeAll(userID: String, by actor: String, logger: Logger) async throws -> [UUID] {
        let revoked = try await changing(.notedByCaller, logger: logger) { connection in
            let rows = try await connection.query(
                """
                WITH revoked AS (
                    UPDATE tokens SET revoked_at = now()
                    WHERE user_id = \(userID) AND revoked_at IS NULL AND expires_at > now()
                    RETURNING id
                ), counted AS (
                    SELECT count(*) AS n FROM revoked
                ), tick AS (
                    UPDATE invalidation_clock SET seq = seq + (SELECT n FROM counted) RETURNING seq - (SELECT n FROM counted) AS first
                ), logged AS (
                    INSERT INTO token_invalidations (seq, token_id)
                    SELECT tick.first + row_number() OVER (), revoked.id FROM revoked, tick
                ), audited AS (
                    INSERT INTO audit_events (actor, action, user_id, details)
                    SELECT \(actor), 'tokens.revoke', \(userID), jsonb_build_object('revoked', n::text) FROM counted
                )
                SELECT id FROM revoked
                """,
                logger: logger
            )
            var ids: [UUID] = []
            for try await id in rows.decode(UUID.self) { ids.append(id) }
            return ids
        }
        for id in revoked { replicas?.changes.tokenChanged(id: id) }
        return revoked
    }

    public func rehash(id: UUID, from oldDigest: TokenDigest, to newDigest: TokenDigest, logger: Logger) async throws {
        _ = try await bounded {
            try await client.query(
                """
                UPDATE tokens SET secret_hash = \(ByteBuffer(bytes: newDigest.bytes)), hash_key_id = \(newDigest.keyID)
                WHERE id = \(id) AND secret_hash = \(ByteBuffer(bytes: oldDigest.bytes))
                """,
                logger: logger
            )
        }
    }

    public func rotate(id: UUID, to digest: TokenDigest, displayPrefix: String, graceSeconds: Int, by actor: String, logger: Logger)
        async throws -> RotationOutcome
    {
        try await changing(.token(id), logger: logger) { connection in
            let current = try await connection.query(
                "SELECT revoked_at IS NOT NULL, expires_at <= now(), replaced_by IS NOT NULL FROM tokens WHERE id = \(id) FOR UPDATE",
                logger: logger
            )
            var state: (revoked: Bool, expired: Bool, replaced: Bool)?
            for try await (revoked, expired, replaced) in current.decode((Bool, Bool, Bool).self) { state = (revoked, expired, replaced) }
            guard let state else { return .notFound }
            if state.revoked { return .notActive(.revoked) }
            if state.expired { return .notActive(.expired) }
            if state.replaced { return .alreadyRotated }
            let inserted = try await connection.query(
                """
                INSERT INTO tokens (user_id, scopes, secret_hash, hash_key_id, display_prefix, name, expires_at, created_by, replaces,
                                    audiences, allowed_cidrs, meta, enabled, max_uses, uses_left, refill_amount, refill_every, refilled_at,
                                    rate_limit_quota, rate_limit_window)
                SELECT user_id, scopes, \(ByteBuffer(bytes: digest.bytes)), \(digest.keyID), \(displayPrefix), name, expires_at, \(actor), id,
                       audiences, allowed_cidrs, meta, enabled, max_uses, uses_left, refill_amount, refill_every, refilled_at,
                       rate_limit_quota, rate_limit_window
                FROM tokens WHERE id = \(id)
                RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            )
            guard let record = try await Self.decodeRecords(inserted).first else { throw StorageError.missingRow }
            try await connection.query(
                """
                UPDATE tokens SET expires_at = LEAST(expires_at, now() + make_interval(secs => \(graceSeconds)::int4)), replaced_by = \(record.id)
                WHERE id = \(id)
                """,
                logger: logger
            )
            try await Self.recordAudit(
                action: "token.rotate", actor: actor, tokenID: id, userID: record.userID,
                details: ["replacedBy": record.id.lowercasedString, "graceSeconds": "\(graceSeconds)"], on: connection, logger: logger)
            try await Self.recordAudit(
                action: "token.create", actor: actor, tokenID: record.id, userID: record.userID,
                details: ["rotatedFrom": id.lowercasedString], on: connection, logger: logger)
            try await Self.announceChange(of: id, on: connection, logger: logger)
            return .rotated(record)
        }
    }

    public func recordUses(_ uses: [UUID: Date], logger: Logger) async throws {
        let ids = Array(uses.keys)
        let times = ids.map { uses[$0]! }
        _ = try await bounded {
            try await client.query(
                """
                UPDATE tokens AS t SET last_used_at = u.used_at
                FROM unnest(\(ids)::uuid[], \(times)::timestamptz[]) AS u(id, used_at)
                WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.used_at)
                """,
                logger: logger
            )
        }
    }

    public func purge(olderThan age: Int, by actor: String, logger: Logger) async throws -> Int {
        try await changing(.everyToken, logger: logger) { connection in
            let rows = try await connection.query(
                """
                WITH purged AS (
                    DELETE FROM tokens
                    WHERE expires_at < now() - make_interval(secs => \(age)::int8)
                       OR revoked_at < now() - make_interval(secs => \(age)::int8)
                    RETURNING id
                )
                SELECT count(*)::int8 FROM purged
                """,
                logger: logger
            )
            var count = 0
            for try await deleted in rows.decode(Int.self) { count = deleted }
            try await Self.recordAudit(
                action: "tokens.purge", actor: actor, tokenID: nil, userID: nil,
                details: ["deleted": "\(count)", "olderThanSeconds": "\(age)"], on: connection, logger: logger)
            if count > 0 { try await Self.announceChange(of: nil, on: connection, logger: logger) }
            return count
        }
    }

    public func auditEvents(_ query: AuditQuery, logger: Logger) async throws -> AuditPage {
        try await bounded {
            let rows = try await client.query(
                """
                SELECT id, occurred_at, actor, action, token_id, user_id, details::text FROM audit_events
                WHERE (\(query.tokenID)::uuid IS NULL OR token_id = \(query.tokenID)::uuid)
                  AND (\(query.userID)::text IS NULL OR user_id = \(query.userID)::text)
                  AND (\(query.before)::int8 IS NULL OR id < \(query.before)::int8)
                ORDER BY id DESC
                LIMIT \(query.limit + 1)
                """,
                logger: logger
            )
            var events: [AuditEvent] = []
            for try await (id, occurredAt, actor, action, tokenID, userID, details) in rows.decode((Int64, Date, String, String, UUID?, String?, String).self) {
                // Written only as objects of strings (recordAudit); anything else reads as no details.
                let object = (try? JSONSerialization.jsonObject(with: Data(details.utf8))) as? [String: Any] ?? [:]
                events.append(
                    AuditEvent(
                        id: id, occurredAt: occurredAt, actor: actor, action: action, tokenID: tokenID, userID: userID,
                        details: object.compactMapValues { $0 as? String }))
            }
            let hasMore = events.count > query.limit
            if hasMore { events.removeLast() }
            return AuditPage(events: events, nextCursor: hasMore ? events.last?.id : nil)
        }
    }

    /// Records in the invalidation log, for every instance's cache, that token `id` (every token when `nil`) changed.
    ///
    /// The clock row's lock is held until the transaction ends, so changes are numbered in commit order.
    private static func announceChange(of id: UUID?, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            WITH tick AS (UPDATE invalidation_clock SET seq = seq + 1 RETURNING seq)
            INSERT INTO token_invalidations (seq, token_id) SELECT seq, \(id) FROM tick
            """,
            logger: logger
        )
    }

    /// Writes the audit event of a change to `token`, in the change's transaction.
    private static func recordAudit(action: String, actor: String, token: TokenRecord, on connection: PostgresConnection, logger: Logger) async throws {
        try await recordAudit(action: action, actor: actor, tokenID: token.id, userID: token.userID, details: [:], on: connection, logger: logger)
    }

    /// Writes one audit event in the change's transaction, `details` as a JSON object with sorted keys.
    private static func recordAudit(
        action: String,
        actor: String,
        tokenID: UUID?,
        userID: String?,
        details: [String: String],
        on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: details, options: [.sortedKeys]), as: UTF8.self)
        try await connection.query(
            """
            INSERT INTO audit_events (actor, action, token_id, user_id, details)
            VALUES (\(actor), \(action), \(tokenID), \(userID), \(json)::jsonb)
            """,
            logger: logger
        )
    }

    private static func decodeRecords(_ rows: PostgresRowSequence) async throws -> [TokenRecord] {
        var records: [TokenRecord] = []
        for try await row in rows { records.append(try record(row)) }
        return records
    }

    /// The token in a row of ``columns``, read cell by cell with concrete types: decoding the row as one 24-element
    /// tuple made the runtime look the tuple's type up for every row (docs/performance.md).
    static func record(_ row: PostgresRow) throws -> TokenRecord {
        var cells = Cells(row)
        let id: UUID = try cells.next(), userID: String = try cells.next(), scopes: [String] = try cells.next()
        let hash: ByteBuffer = try cells.next(), keyID: Int = try cells.next(), displayPrefix: String = try cells.next()
        let name: String? = try cells.next(), createdAt: Int64 = try cells.next(), expiresAt: Date = try cells.next()
        let revokedAt: Date? = try cells.next(), lastUsedAt: Date? = try cells.next(), createdBy: String = try cells.next()
        let replaces: UUID? = try cells.next(), replacedBy: UUID? = try cells.next()
        let audiences: [String]? = try cells.next(), allowedCidrs: [String]? = try cells.next(), meta: String? = try cells.next()
        let enabled: Bool = try cells.next(), maxUses: Int? = try cells.next(), usesLeft: Int? = try cells.next()
        let refillAmount: Int? = try cells.next(), refillEvery: String? = try cells.next()
        let rateLimitQuota: Int? = try cells.next(), rateLimitWindow: Int? = try cells.next()
        return TokenRecord(
            id: id,
            userID: userID,
            scopes: scopes,
            digest: TokenDigest(bytes: Array(buffer: hash), keyID: keyID),
            displayPrefix: displayPrefix,
            name: name,
            createdAtMicroseconds: createdAt,
            expiresAt: expiresAt,
            revokedAt: revokedAt,
            lastUsedAt: lastUsedAt,
            createdBy: createdBy,
            replaces: replaces,
            replacedBy: replacedBy,
            policy: TokenPolicy(
                audiences: audiences,
                // Stored only after parsing; an entry that no longer parses restricts to nothing rather than to everywhere.
                allowedNetworks: allowedCidrs.map { $0.map { IPNetwork(cidr: $0) ?? .nowhere } },
                meta: meta,
                enabled: enabled,
                maxUses: maxUses,
                refill: refillAmount.flatMap { amount in refillEvery.flatMap(UsageRefill.Period.init(rawValue:)).map { UsageRefill(amount: amount, every: $0) } },
                rateLimit: rateLimitQuota.flatMap { quota in rateLimitWindow.map { TokenPolicy.rateLimit(quota: quota, window: $0) } }
            ),
            usesLeft: usesLeft
        )
    }
}

/// A token waiting to be created, one per caller: two callers are never the same creation.
struct PendingCreation: Hashable, Sendable {
    let token: NewToken
    private let identity = UUID()

    init(token: NewToken) { self.token = token }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.identity == rhs.identity }
    func hash(into hasher: inout Hasher) { hasher.combine(identity) }
}

/// A row's cells in column order, each decoded as the type the caller names.
private struct Cells {
    private var iterator: PostgresRow.Iterator

    init(_ row: PostgresRow) {
        iterator = row.makeIterator()
    }

    /// The next cell as a `Value`; a row with fewer cells than read is a ``StorageError/missingRow``.
    mutating func next<Value: PostgresDecodable>() throws -> Value {
        guard let cell = iterator.next() else { throw StorageError.missingRow }
        return try cell.decode(Value.self)
    }
}

/// A database answer that breaks the repository's expectations.

