import Logging
import NIOConcurrencyHelpers
import Testing

@testable import Tessera

/// Coalescing of concurrent lookups: every caller gets its own answer, errors and deadlines reach every caller.
@Suite("Lookup batcher")
struct LookupBatcherTests {
    private let logger = Logger(label: "test")

    /// A fetch that records the keys of each call and answers `key * 10` for even keys, after `delay`.
    final class RecordingFetch: Sendable {
        let calls = NIOLockedValueBox<[[Int]]>([])
        let delay: Duration

        init(delay: Duration = .milliseconds(20)) { self.delay = delay }

        func fetch(_ keys: [Int], _ logger: Logger) async throws -> [Int: Int] {
            calls.withLockedValue { $0.append(keys) }
            try await Task.sleep(for: delay)
            return Dictionary(uniqueKeysWithValues: keys.filter { $0.isMultiple(of: 2) }.map { ($0, $0 * 10) })
        }
    }

    @Test func concurrentLookupsShareRoundTripsAndEachGetsItsOwnAnswer() async throws {
        let fetch = RecordingFetch()
        let batcher = LookupBatcher<Int, Int>(concurrency: 1, maximumKeys: 1_000, timeout: .seconds(5), timeoutMessage: "late", fetch: fetch.fetch)
        let answers = try await withThrowingTaskGroup(of: (Int, Int?).self) { group in
            for key in 0..<200 { group.addTask { (key, try await batcher.value(forAnyOf: [key], logger: logger)) } }
            return try await group.reduce(into: [Int: Int?]()) { $0[$1.0] = $1.1 }
        }
        #expect(answers.count == 200)
        for (key, value) in answers { #expect(value == (key.isMultiple(of: 2) ? key * 10 : nil)) }
        let calls = fetch.calls.withLockedValue { $0 }
        // One round trip at a time, so 200 callers arriving together need far fewer than 200.
        #expect(calls.count < 50)
        #expect(calls.flatMap { $0 }.sorted() == Array(0..<200))
    }

    @Test func theFirstOfSeveralKeysWithAValueWins() async throws {
        let fetch = RecordingFetch(delay: .zero)
        let batcher = LookupBatcher<Int, Int>(concurrency: 2, maximumKeys: 16, timeout: .seconds(5), timeoutMessage: "late", fetch: fetch.fetch)
        #expect(try await batcher.value(forAnyOf: [1, 4, 6], logger: logger) == 40)
        #expect(try await batcher.value(forAnyOf: [1, 3], logger: logger) == nil)
    }

    @Test func noBatchCarriesMoreThanTheMaximumKeys() async throws {
        let fetch = RecordingFetch()
        let batcher = LookupBatcher<Int, Int>(concurrency: 1, maximumKeys: 8, timeout: .seconds(5), timeoutMessage: "late", fetch: fetch.fetch)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for key in 0..<60 { group.addTask { _ = try await batcher.value(forAnyOf: [key, key + 1_000], logger: logger) } }
            try await group.waitForAll()
        }
        let calls = fetch.calls.withLockedValue { $0 }
        #expect(calls.allSatisfy { $0.count <= 8 })
        #expect(calls.flatMap { $0 }.count == 120)
    }

    @Test func aFailedFetchFailsEveryCallerInItsBatchAndTheNextBatchRuns() async throws {
        struct Refused: Error {}
        let attempts = NIOLockedValueBox(0)
        let batcher = LookupBatcher<Int, Int>(concurrency: 1, maximumKeys: 1_000, timeout: .seconds(5), timeoutMessage: "late") { keys, _ in
            let attempt = attempts.withLockedValue { $0 += 1; return $0 }
            try await Task.sleep(for: .milliseconds(20))
            if attempt == 1 { throw Refused() }
            return Dictionary(uniqueKeysWithValues: keys.map { ($0, $0) })
        }
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for key in 0..<20 { group.addTask { (try? await batcher.value(forAnyOf: [key], logger: logger)) != nil } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        // The first batch (at least its leader) failed; the callers that waited went in a later batch and succeeded.
        #expect(outcomes.contains(false))
        #expect(outcomes.contains(true))
        #expect(try await batcher.value(forAnyOf: [7], logger: logger) == 7)
    }

    @Test func everyCallerIsAnsweredWithinTheTimeoutWhenTheFetchHangs() async throws {
        let batcher = LookupBatcher<Int, Int>(concurrency: 1, maximumKeys: 1_000, timeout: .milliseconds(300), timeoutMessage: "late") { _, _ in
            try await Task.sleep(for: .seconds(30))
            return [:]
        }
        let started = ContinuousClock.now
        let failures = await withTaskGroup(of: String?.self) { group in
            for key in 0..<10 {
                group.addTask {
                    do {
                        _ = try await batcher.value(forAnyOf: [key], logger: logger)
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(failures.count == 10)
        #expect(failures.allSatisfy { $0 == "late" })
        // Waiters behind the hung batch are not given a deadline of their own on top of it.
        #expect(ContinuousClock.now - started < .seconds(2))
    }
}
