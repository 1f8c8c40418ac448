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
    let client: PostgresClient
    let timeout: Duration

    /// Creates a store for `policy` over a running client.
    public init(policy: RateLimitPolicy, client: PostgresClient, timeout: Duration = .seconds(5)) {
        self.policy = policy
        self.client = client
        self.timeout = timeout
    }

    /// Budgets are kept per policy name and key; the arithmetic is in nanoseconds of the database's clock, fine
    /// enough for the fastest rate a policy may have.
    public func acquire(_ key: String, under policy: RateLimitPolicy, logger: Logger) async throws -> RateLimitDecision {
        let (name, gcra, key) = (policy.name, GCRA(policy, unitsPerSecond: 1_000_000_000), Self.storedKey(key))
        let (interval, tolerance) = (gcra.interval, gcra.tolerance)
        return try await bounded { [client] in
            // The upsert only advances the arrival time when the request fits the budget; no row back means refused.
            let rows = try await client.query(
                """
                WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000000)::int8 AS now),
                previous AS (SELECT tat FROM rate_limits WHERE policy = \(name) AND key = \(key)),
                spent AS (
                    INSERT INTO rate_limits AS r (policy, key, tat)
                    SELECT \(name), \(key), clock.now + \(interval) FROM clock
                    ON CONFLICT (policy, key) DO UPDATE
                        SET tat = greatest(r.tat, (SELECT now FROM clock)) + \(interval)
                        WHERE greatest(r.tat, (SELECT now FROM clock)) + \(interval) - (SELECT now FROM clock) <= \(tolerance)
                    RETURNING tat
                )
                SELECT (SELECT now FROM clock), (SELECT tat FROM spent), (SELECT tat FROM previous)
                """,
                logger: logger
            )
            for try await (now, spent, previous) in rows.decode((Int64, Int64?, Int64?).self) {
                return gcra.decision(now: now, arrival: spent ?? max(previous ?? now, now), allowed: spent != nil)
            }
            throw StorageError.missingRow
        }
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
    /// Limiters whose state is in PostgreSQL, shared by every instance using `client`'s database.
    public init(_ settings: RateLimitSettings, client: PostgresClient, timeout: Duration) {
        admin = PostgresRateLimitStore(policy: settings.admin, client: client, timeout: timeout)
        verify = PostgresRateLimitStore(policy: settings.verify, client: client, timeout: timeout)
        endClient = PostgresRateLimitStore(policy: settings.endClient, client: client, timeout: timeout)
        authFailures = PostgresRateLimitStore(policy: settings.authFailures, client: client, timeout: timeout)
        tokens = PostgresRateLimitStore(policy: TokenPolicy.rateLimitPartition, client: client, timeout: timeout)
    }
}
