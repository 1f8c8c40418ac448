import Logging
import PostgresNIO
import TokenCrypto

/// GCRA in PostgreSQL: one atomic statement per decision on an UNLOGGED table, so limits hold across instances.
/// Keys are stored as fixed-length digests, so a client cannot grow the table's rows by what it sends.
///
/// The database's clock decides, so instances with skewed clocks still agree. If PostgreSQL cannot be reached
/// the decision fails and the request is answered `503`: a limiter that cannot count does not wave requests through.
public struct PostgresRateLimitStore: RateLimitStore {
    public let policy: RateLimitPolicy
    let statements: StatementClient
    let timeout: Duration

    /// Creates a store for `policy` over a running client, preparing its statement through a StatementClient of its own.
    public init(policy: RateLimitPolicy, client: PostgresClient, timeout: Duration = .seconds(5)) {
        self.init(policy: policy, statements: StatementClient(client: client, address: "primary", prepares: true), timeout: timeout)
    }

    /// Creates a store for `policy` over `statements`, which other stores on the same client may share.
    init(policy: RateLimitPolicy, statements: StatementClient, timeout: Duration = .seconds(5)) {
        self.policy = policy
        self.statements = statements
        self.timeout = timeout
    }

    /// Budgets are kept per policy name and key; the arithmetic is in nanoseconds of the database's clock, fine
    /// enough for the fastest rate a policy may have.
    public func acquire(_ key: String, under policy: RateLimitPolicy, logger: Logger) async throws -> RateLimitDecision {
        let gcra = GCRA(policy, unitsPerSecond: 1_000_000_000)
        let spend = Spend(policy: policy.name, key: Self.storedKey(key), interval: gcra.interval, tolerance: gcra.tolerance)
        return try await bounded { [statements] in
            guard let (now, spent, previous) = try await statements.rows(spend, logger: logger).first else { throw StorageError.missingRow }
            return gcra.decision(now: now, arrival: spent ?? max(previous ?? now, now), allowed: spent != nil)
        }
    }

    /// Spends one unit of `key`'s budget under `policy` if it fits; answers the database's clock, the new arrival
    /// time when it was spent, and the arrival time before.
    struct Spend: PostgresPreparedStatement {
        // The upsert only advances the arrival time when the request fits the budget; no arrival back means refused.
        static let sql = """
            WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000000)::int8 AS now),
            previous AS (SELECT tat FROM rate_limits WHERE policy = $1 AND key = $2),
            spent AS (
                INSERT INTO rate_limits AS r (policy, key, tat)
                SELECT $1, $2, clock.now + $3 FROM clock
                ON CONFLICT (policy, key) DO UPDATE
                    SET tat = greatest(r.tat, (SELECT now FROM clock)) + $3
                    WHERE greatest(r.tat, (SELECT now FROM clock)) + $3 - (SELECT now FROM clock) <= $4
                RETURNING tat
            )
            SELECT (SELECT now FROM clock), (SELECT tat FROM spent), (SELECT tat FROM previous)
            """
        static let name = StatementClient.name("rate_limit_spend", sql: sql)
        var policy: String
        var key: String
        var interval: Int64
        var tolerance: Int64

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(policy)
            bindings.append(key)
            bindings.append(interval)
            bindings.append(tolerance)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> (Int64, Int64?, Int64?) { try row.decode((Int64, Int64?, Int64?).self) }
    }

    /// What the table stores for `key`: its BLAKE2b-256 digest in hexadecimal, 64 characters whatever the key.
    static func storedKey(_ key: String) -> String {
        Hex.encode(Blake2b.hash(utf8: key))
    }

    /// Runs `operation` under the store's deadline, its failures in storage's terms.
    private func bounded<Result: Sendable>(_ operation: @escaping @Sendable () async throws -> Result) async throws -> Result {
        try await StorageError.translating {
            try await withDeadline(timeout, "the rate limit store did not answer within \(timeout)", operation: operation)
        }
    }

    /// Deletes entries whose budget has fully refilled; they mean the same as no entry.
    public static func sweep(client: PostgresClient, logger: Logger) async throws {
        try await client.query(
            "DELETE FROM rate_limits WHERE tat < (extract(epoch FROM clock_timestamp()) * 1000000000)::int8",
            logger: logger
        )
    }
}

extension RateLimiters {
    /// Limiters whose state is in PostgreSQL, shared by every instance using `client`'s database; their statement is
    /// prepared through one StatementClient of their own.
    public init(_ settings: RateLimitSettings, client: PostgresClient, timeout: Duration) {
        self.init(settings, statements: StatementClient(client: client, address: "primary", prepares: true), timeout: timeout)
    }

    /// Limiters whose state is in PostgreSQL, sending their statements through `statements`.
    init(_ settings: RateLimitSettings, statements: StatementClient, timeout: Duration) {
        admin = PostgresRateLimitStore(policy: settings.admin, statements: statements, timeout: timeout)
        verify = PostgresRateLimitStore(policy: settings.verify, statements: statements, timeout: timeout)
        endClient = PostgresRateLimitStore(policy: settings.endClient, statements: statements, timeout: timeout)
        authFailures = PostgresRateLimitStore(policy: settings.authFailures, statements: statements, timeout: timeout)
        tokens = PostgresRateLimitStore(policy: TokenPolicy.rateLimitPartition, statements: statements, timeout: timeout)
    }
}
