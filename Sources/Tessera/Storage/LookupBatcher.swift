import Logging
import NIOConcurrencyHelpers

/// Coalesces concurrent lookups (or creations: any work keyed per caller) into shared batches: at most
/// `concurrency` batches run at once, and lookups that arrive meanwhile wait and go together in the next one.
///
/// Under light load every lookup runs at once, alone; under heavy load one round trip answers many callers. The
/// first caller waiting when a batch ends is handed the next batch and runs it for the others. Each caller is
/// answered within `timeout` of asking, whatever the queue ahead of it. A waiting caller is not woken by its own
/// cancellation: it is answered when its batch is, within the timeout.
final class LookupBatcher<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// Fetches the values of the keys it is given (logging to the leading caller's logger); keys without a value are
    /// left out of the answer.
    typealias Fetch = @Sendable ([Key], Logger) async throws -> [Key: Value]

    private let fetch: Fetch
    private let concurrency: Int
    private let maximumKeys: Int
    private let timeout: Duration
    private let timeoutMessage: String
    private let state = NIOLockedValueBox(State())

    /// Creates a batcher running `fetch` at most `concurrency` times at once, with at most `maximumKeys` keys each.
    init(concurrency: Int, maximumKeys: Int, timeout: Duration, timeoutMessage: String, fetch: @escaping Fetch) {
        precondition(concurrency > 0 && maximumKeys > 0)
        self.fetch = fetch
        self.concurrency = concurrency
        self.maximumKeys = maximumKeys
        self.timeout = timeout
        self.timeoutMessage = timeoutMessage
    }

    /// How many callers are waiting for a batch to be free.
    var waitingCallers: Int { state.withLockedValue { $0.waiting.count } }

    /// The value of the first of `keys` that has one, or `nil`.
    func value(forAnyOf keys: [Key], logger: Logger) async throws -> Value? {
        let asked = ContinuousClock.now
        let role = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Role, any Error>) in
            let leads = state.withLockedValue { state in
                if state.running < concurrency {
                    state.running += 1
                    return true
                }
                state.waiting.append(Waiter(keys: keys, asked: asked, continuation: continuation))
                return false
            }
            if leads { continuation.resume(returning: .leader(companions: [])) }
        }
        switch role {
        case .answered(let value):
            return value
        case .leader(let companions):
            let outcome = await run(keys, asked: asked, for: companions, logger: logger)
            handOver()
            return try outcome.get()
        }
    }

    /// What a waiting caller is resumed with.
    private enum Role {
        case answered(Value?)
        case leader(companions: [Waiter])
    }

    private struct Waiter {
        var keys: [Key]
        var asked: ContinuousClock.Instant
        var continuation: CheckedContinuation<Role, any Error>
    }

    private struct State {
        var running = 0
        var waiting: [Waiter] = []
    }

    /// Fetches the leader's `keys` together with its companions', answers the companions and returns the leader's outcome.
    ///
    /// The batch has its oldest member's deadline. A leader cancelled while running a batch does not fail its
    /// companions' lookups: a shared fetch runs in a task of its own.
    private func run(_ keys: [Key], asked: ContinuousClock.Instant, for companions: [Waiter], logger: Logger) async -> Result<Value?, any Error> {
        let oldest = companions.reduce(asked) { min($0, $1.asked) }
        let remaining = timeout - (ContinuousClock.now - oldest)
        let outcome: Result<[Key: Value], any Error>
        if remaining <= .zero {
            outcome = .failure(DeadlineExceeded(description: timeoutMessage))
        } else {
            var allKeys = keys
            for companion in companions { allKeys += companion.keys }
            let batch = allKeys
            let fetch = self.fetch
            let message = timeoutMessage
            let work: @Sendable () async throws -> [Key: Value] = { try await withDeadline(remaining, message) { try await fetch(batch, logger) } }
            if companions.isEmpty {
                do { outcome = .success(try await work()) } catch { outcome = .failure(error) }
            } else {
                outcome = await Task { try await work() }.result
            }
        }
        for companion in companions {
            companion.continuation.resume(with: outcome.map { .answered(Self.first(of: companion.keys, in: $0)) })
        }
        return outcome.map { Self.first(of: keys, in: $0) }
    }

    /// Passes the next batch, if callers are waiting, to the first of them; otherwise frees the slot.
    ///
    /// Callers whose time is up are answered at once instead. A batch takes callers of about one age (within a tenth
    /// of the timeout of its first), so its deadline, its oldest member's, cuts none of them short by more than that.
    private func handOver() {
        let now = ContinuousClock.now
        let (expired, next) = state.withLockedValue { state -> ([Waiter], (leader: Waiter, companions: [Waiter])?) in
            // Waiters queue in the order they asked: the expired ones are at the front.
            let expiredCount = state.waiting.prefix { now - $0.asked >= timeout }.count
            let expired = Array(state.waiting.prefix(expiredCount))
            state.waiting.removeFirst(expiredCount)
            guard let first = state.waiting.first else {
                state.running -= 1
                return (expired, nil)
            }
            var taken = 0
            var count = 0
            for waiter in state.waiting {
                if count > 0 && (taken + waiter.keys.count > maximumKeys || waiter.asked - first.asked > timeout / 10) { break }
                taken += waiter.keys.count
                count += 1
            }
            let batch = Array(state.waiting.prefix(count))
            state.waiting.removeFirst(count)
            return (expired, (batch[0], Array(batch.dropFirst())))
        }
        for waiter in expired { waiter.continuation.resume(throwing: DeadlineExceeded(description: timeoutMessage)) }
        guard let next else { return }
        next.leader.continuation.resume(returning: .leader(companions: next.companions))
    }

    private static func first(of keys: [Key], in values: [Key: Value]) -> Value? {
        for key in keys { if let value = values[key] { return value } }
        return nil
    }
}
