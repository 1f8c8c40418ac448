import Logging
import PostgresNIO

/// Where a limiter keeps its budgets: process memory (the default) or PostgreSQL, shared by every instance.
public protocol RateLimitStore: Sendable {
    /// The budget every key gets.
    var policy: RateLimitPolicy { get }
    /// Spends one request from `key`'s budget if it has one left.
    func acquire(_ key: String, logger: Logger) async throws -> RateLimitDecision
    /// Whether `key` could spend a request now, without spending it.
    func check(_ key: String, logger: Logger) async throws -> RateLimitDecision
}

extension GCRALimiter: RateLimitStore {
    public func acquire(_ key: String, logger: Logger) -> RateLimitDecision { acquire(key) }
    public func check(_ key: String, logger: Logger) -> RateLimitDecision { check(key) }
}

/// GCRA in PostgreSQL: one atomic statement per decision on an UNLOGGED table, so limits hold across instances.
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

    private var intervalMicroseconds: Int64 { policy.emissionInterval / 1_000 }
    private var toleranceMicroseconds: Int64 { intervalMicroseconds * Int64(policy.quota) }

    public func acquire(_ key: String, logger: Logger) async throws -> RateLimitDecision {
        let (name, interval, tolerance) = (policy.name, intervalMicroseconds, toleranceMicroseconds)
        return try await withDeadline(timeout, "the rate limit store did not answer within \(timeout)") { [client] in
            // The upsert only advances the arrival time when the request fits the budget; no row back means refused.
            let rows = try await client.query(
                """
                WITH clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8 AS now),
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
                return decision(now: now, arrival: spent ?? max(previous ?? now, now), allowed: spent != nil)
            }
            throw PostgresTokenRepositoryError.missingReturnedRow
        }
    }

    public func check(_ key: String, logger: Logger) async throws -> RateLimitDecision {
        let name = policy.name
        return try await withDeadline(timeout, "the rate limit store did not answer within \(timeout)") { [client] in
            let rows = try await client.query(
                """
                SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8,
                       (SELECT tat FROM rate_limits WHERE policy = \(name) AND key = \(key))
                """,
                logger: logger
            )
            for try await (now, stored) in rows.decode((Int64, Int64?).self) {
                let arrival = max(stored ?? now, now)
                return decision(now: now, arrival: arrival, allowed: arrival + intervalMicroseconds - now <= toleranceMicroseconds)
            }
            throw PostgresTokenRepositoryError.missingReturnedRow
        }
    }

    /// The decision given the arrival time now in force (after spending, when allowed).
    private func decision(now: Int64, arrival: Int64, allowed: Bool) -> RateLimitDecision {
        let ahead = arrival - now
        return RateLimitDecision(
            allowed: allowed,
            remaining: max(0, Int((toleranceMicroseconds - ahead) / intervalMicroseconds)),
            resetSeconds: Int((max(0, ahead) + 999_999) / 1_000_000),
            retryAfterSeconds: allowed ? 0 : max(1, Int((arrival + intervalMicroseconds - toleranceMicroseconds - now + 999_999) / 1_000_000))
        )
    }

    /// Deletes entries whose budget has fully refilled; they mean the same as no entry.
    public static func sweep(client: PostgresClient, logger: Logger) async throws {
        try await client.query(
            "DELETE FROM rate_limits WHERE tat < (extract(epoch FROM clock_timestamp()) * 1000000)::int8",
            logger: logger
        )
    }
}
