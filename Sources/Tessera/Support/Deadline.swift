import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Why an operation given a deadline did not finish.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let description: String
}

/// Runs `operation`, throwing ``DeadlineExceeded`` with `message` if it takes longer than `duration`.
///
/// The caller is answered at the deadline even if `operation` ignores cancellation (a query stuck on a dead
/// connection does): `operation` is cancelled and left to finish on its own.
func withDeadline<Result: Sendable>(
    _ duration: Duration,
    _ message: @autoclosure () -> String,
    operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let message = message()
    let outcome = DeadlineRace<Result>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            outcome.start(continuation)
            let work = Task {
                do {
                    outcome.finish(.success(try await operation()))
                } catch {
                    outcome.finish(.failure(error))
                }
            }
            let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(duration.nanoseconds)) {
                if outcome.finish(.failure(DeadlineExceeded(description: message))) { work.cancel() }
            }
            outcome.onFinish { timer.cancel() }
            outcome.onCancel { work.cancel() }
        }
    } onCancel: {
        outcome.cancel()
    }
}

/// The first of an operation's result, its deadline and its caller's cancellation, resumed exactly once.
private final class DeadlineRace<Result: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result, any Error>?
        var finished = false
        var cancelled = false
        var onFinish: (@Sendable () -> Void)?
        var onCancel: (@Sendable () -> Void)?
    }

    private let state = NIOLockedValueBox(State())

    func start(_ continuation: CheckedContinuation<Result, any Error>) {
        state.withLockedValue { $0.continuation = continuation }
    }

    /// Resumes the caller with `result` unless something else already did; returns whether this call did.
    @discardableResult
    func finish(_ result: Swift.Result<Result, any Error>) -> Bool {
        let (continuation, callback) = state.withLockedValue { state -> (CheckedContinuation<Result, any Error>?, (@Sendable () -> Void)?) in
            guard !state.finished, let continuation = state.continuation else { return (nil, nil) }
            state.finished = true
            state.continuation = nil
            return (continuation, state.onFinish)
        }
        guard let continuation else { return false }
        continuation.resume(with: result)
        callback?()
        return true
    }

    func onFinish(_ callback: @escaping @Sendable () -> Void) {
        let runNow = state.withLockedValue { state in
            if state.finished { return true }
            state.onFinish = callback
            return false
        }
        if runNow { callback() }
    }

    func onCancel(_ callback: @escaping @Sendable () -> Void) {
        let runNow = state.withLockedValue { state in
            if state.cancelled { return true }
            state.onCancel = callback
            return false
        }
        if runNow { callback() }
    }

    /// The caller was cancelled: cancel the operation and answer with `CancellationError`.
    func cancel() {
        let callback = state.withLockedValue { state -> (@Sendable () -> Void)? in
            state.cancelled = true
            return state.onCancel
        }
        callback?()
        finish(.failure(CancellationError()))
    }
}

extension Duration {
    /// The duration in whole nanoseconds.
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
    /// The duration in whole milliseconds.
    var milliseconds: Int64 { nanoseconds / 1_000_000 }
}
