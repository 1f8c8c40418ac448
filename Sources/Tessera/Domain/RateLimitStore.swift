import Logging
import NIOConcurrencyHelpers

/// Where a limiter keeps its budgets: process memory (the default) or PostgreSQL, shared by every instance.
public protocol RateLimitStore: Sendable {
    /// The budget every key gets unless a call names its own (as a token's own rate limit does).
    var policy: RateLimitPolicy { get }
    /// Spends one request from `key`'s budget under `policy` if it has one left.
    func acquire(_ key: String, under policy: RateLimitPolicy, logger: Logger) async throws -> RateLimitDecision
}

extension RateLimitStore {
    /// Spends one request from `key`'s budget under the store's own policy if it has one left.
    public func acquire(_ key: String, logger: Logger) async throws -> RateLimitDecision {
        try await acquire(key, under: policy, logger: logger)
    }
}

extension GCRALimiter: RateLimitStore {
    public func acquire(_ key: String, under policy: RateLimitPolicy, logger: Logger) -> RateLimitDecision { acquire(key, under: policy) }
}

/// One request's spend of one budget, made only when the work it pays for is about to start: a request refused
/// before then (a malformed token) costs the budget nothing.
public final class BudgetCharge: Sendable {
    /// The budget spent.
    public let store: any RateLimitStore
    /// Whose budget: the caller's API key name.
    public let key: String
    private let outcome = NIOLockedValueBox<RateLimitDecision?>(nil)

    /// Creates an unspent charge of `key`'s budget in `store`.
    public init(store: any RateLimitStore, key: String) {
        self.store = store
        self.key = key
    }

    /// The decision, once the budget was spent.
    public var decision: RateLimitDecision? { outcome.withLockedValue { $0 } }

    /// Spends one request of the budget, once; throws ``BudgetExceeded`` when none is left.
    public func spend(logger: Logger) async throws {
        if let decision {
            guard decision.allowed else { throw BudgetExceeded(decision: decision) }
            return
        }
        let decision = try await store.acquire(key, logger: logger)
        outcome.withLockedValue { $0 = decision }
        guard decision.allowed else { throw BudgetExceeded(decision: decision) }
    }
}

/// A ``BudgetCharge`` found its budget spent.
public struct BudgetExceeded: Error {
    /// The refusing decision, with when to retry.
    public var decision: RateLimitDecision
}
