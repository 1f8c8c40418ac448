import Logging

/// Where a limiter keeps its budgets: process memory (the default) or PostgreSQL, shared by every instance.
public protocol RateLimitStore: Sendable {
    /// The budget every key gets.
    var policy: RateLimitPolicy { get }
    /// Spends one request from `key`'s budget if it has one left.
    func acquire(_ key: String, logger: Logger) async throws -> RateLimitDecision
}

extension GCRALimiter: RateLimitStore {
    public func acquire(_ key: String, logger: Logger) -> RateLimitDecision { acquire(key) }
}
