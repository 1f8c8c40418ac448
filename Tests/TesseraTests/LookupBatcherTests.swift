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
        let fetch = GatedFetch()
        let batcher = LookupBatcher<Int, Int>(concurrency: 1, maximumKeys: 8, timeout: .seconds(60), timeoutMessage: "late", fetch: fetch.fetch)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for key in 0..<60 { group.addTask { _ = try await batcher.value(forAnyOf: [key, key + 1_000], logger: logger) } }
            // One caller leads; the other 59 queue behind its held round trip, then go in batches.
            try await eventually { batcher.waitingCallers == 59 }
            fetch.openAll()
            try await group.waitForAll()
        }
        let calls = fetch.calls.withLockedValue { $0 }
        #expect(calls.allSatisfy { $0.count <= 8 })
        #expect(calls.flatMap { $0 }.count == 120)
        // The queued callers share batches filled up to the maximum: 1 alone, then 14 of four callers and 1 of three.
        #expect(calls.count == 16)
        #expect(calls.filter { $0.count == 8 }.count == 14)
    }

    @Test func aFailedFetchFailsEveryCallerInItsBatchAndTheNextBatchRuns() async throws {
        let fetch = GatedFetch(failing: 1)
        let batcher = LookupBatcher<Int, Int>(concurrency: 1, maximumKeys: 1_000, timeout: .seconds(60), timeoutMessage: "late", fetch: fetch.fetch)
        // The first lookup runs alone; ten callers queue behind it and go together in the second batch, whose fetch fails.
        let first = Task { try await batcher.value(forAnyOf: [0], logger: logger) }
        try await eventually { fetch.calls.withLockedValue { $0.count } == 1 }
        let queued = (1...10).map { key in Task { try await batcher.value(forAnyOf: [key], logger: logger) } }
        try await eventually { batcher.waitingCallers == 10 }
        fetch.open(0)
        // A caller asking while that batch runs goes in the third, which runs and answers it.
        try await eventually { fetch.calls.withLockedValue { $0.count } == 2 }
        let late = Task { try await batcher.value(forAnyOf: [11], logger: logger) }
        try await eventually { batcher.waitingCallers == 1 }
        fetch.openAll()

        #expect(try await first.value == 0)
        var refused = 0
        for caller in queued {
            do {
                let value = try await caller.value
                Issue.record("a caller in the failed batch was answered \(String(describing: value))")
            } catch is GatedFetch.Refused {
                refused += 1
            }
        }
        #expect(refused == 10)
        #expect(try await late.value == nil)
        let batches = fetch.calls.withLockedValue { $0 }
        try #require(batches.count == 3)
        #expect(batches[0] == [0])
        #expect(batches[1].sorted() == Array(1...10))  // the failed batch held all ten callers
        #expect(batches[2] == [11])
    }

    @Test func everyCallerIsAnsweredWithinTheTimeoutWhenTheFetchHangs() async throws {
        // Two seconds, so that a second of scheduling delay on a loaded machine (tests run in parallel) cannot pass
        // for the second timeout this test rules out.
        let timeout = Duration.seconds(2)
        let batcher = LookupBatcher<Int, Int>(concurrency: 1, maximumKeys: 1_000, timeout: timeout, timeoutMessage: "late") { _, _ in
            try await Task.sleep(for: .seconds(30))
            return [:]
        }
        let outcomes = await withTaskGroup(of: (error: String?, waited: Duration).self) { group in
            for key in 0..<10 {
                group.addTask {
                    let asked = ContinuousClock.now
                    do {
                        _ = try await batcher.value(forAnyOf: [key], logger: logger)
                        return (nil, ContinuousClock.now - asked)
                    } catch {
                        return ("\(error)", ContinuousClock.now - asked)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.count == 10)
        #expect(outcomes.allSatisfy { $0.error == "late" })
        // The callers queued behind the hung batch are answered at their own deadline, not given a fresh timeout
        // once that batch gives up (which would make them wait two).
        #expect(outcomes.allSatisfy { $0.waited < timeout * 1.8 })
        #expect(outcomes.allSatisfy { $0.waited >= timeout * 0.9 })  // and not failed before it
    }

    @Test func aYoungCallerIsNotCutShortByAnOldOneItQueuedWith() async throws {
        // Each round trip takes 1.4 s against a 2 s timeout: the caller asking at 0.05 s times out at its own
        // deadline, and the one asking at 0.6 s must not be put in its batch and failed 1.45 s after asking.
        let timeout = Duration.seconds(2)
        let fetch = RecordingFetch(delay: .milliseconds(1_400))
        let batcher = LookupBatcher<Int, Int>(concurrency: 1, maximumKeys: 100, timeout: timeout, timeoutMessage: "late", fetch: fetch.fetch)
        let outcomes = await withTaskGroup(of: (key: Int, asked: ContinuousClock.Instant, answered: ContinuousClock.Instant, late: Bool).self) { group in
            for (key, delay) in [(0, 0), (2, 50), (4, 600)] {
                group.addTask {
                    try? await Task.sleep(for: .milliseconds(delay))
                    let asked = ContinuousClock.now
                    let late: Bool
                    do {
                        _ = try await batcher.value(forAnyOf: [key], logger: logger)
                        late = false
                    } catch {
                        late = true
                    }
                    return (key, asked, ContinuousClock.now, late)
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.count == 3)
        // The scenario happened: the young caller asked while the first round trip was still out.
        let first = try #require(outcomes.first { $0.key == 0 }), young = try #require(outcomes.first { $0.key == 4 })
        #expect(young.asked < first.answered)
        // The other two each time out, in batches of their own (the first is answered in its 1.4 s on an idle machine).
        #expect(Set(outcomes.filter { $0.late }.map { $0.key }).isSuperset(of: [2, 4]))
        for outcome in outcomes where outcome.late {
            // Not more than a tenth of the timeout early, and answered well before a second deadline could pass
            // (with room for timers delayed while CPU-bound suites share the two cores of the cooperative pool).
            #expect(outcome.answered - outcome.asked >= timeout * 0.9)
            #expect(outcome.answered - outcome.asked < timeout * 2.5)
        }
    }

    @Test func aCancelledLeaderDoesNotFailItsCompanions() async throws {
        let fetch = GatedFetch()
        let batcher = LookupBatcher<Int, Int>(concurrency: 1, maximumKeys: 100, timeout: .seconds(60), timeoutMessage: "late", fetch: fetch.fetch)
        let first = Task { try await batcher.value(forAnyOf: [0], logger: logger) }
        try await eventually { fetch.calls.withLockedValue { $0.count } == 1 }
        // These two wait while the first runs; the first of them then leads their shared batch.
        let leader = Task { try await batcher.value(forAnyOf: [2], logger: logger) }
        try await eventually { batcher.waitingCallers == 1 }
        let companion = Task { try await batcher.value(forAnyOf: [4], logger: logger) }
        try await eventually { batcher.waitingCallers == 2 }
        fetch.open(0)
        try await eventually { fetch.calls.withLockedValue { $0.count } == 2 }  // the shared batch is running now
        leader.cancel()
        fetch.open(1)
        #expect(try await first.value == 0)
        #expect(try await companion.value == 40)
        #expect(fetch.calls.withLockedValue { $0 } == [[0], [2, 4]])
    }
}

/// A fetch that records each call's keys and holds it until the test opens it; it answers `key * 10` for even keys.
private final class GatedFetch: Sendable {
    struct Refused: Error {}

    let calls = NIOLockedValueBox<[[Int]]>([])
    private let opened = NIOLockedValueBox<(calls: Set<Int>, all: Bool)>(([], false))
    private let failing: Int?

    /// Creates a fetch whose call number `failing` (counted from 0), if any, throws `Refused`.
    init(failing: Int? = nil) { self.failing = failing }

    /// Lets call number `call` (counted from 0) answer.
    func open(_ call: Int) { opened.withLockedValue { _ = $0.calls.insert(call) } }

    /// Lets every call, present and future, answer.
    func openAll() { opened.withLockedValue { $0.all = true } }

    func fetch(_ keys: [Int], _ logger: Logger) async throws -> [Int: Int] {
        let call = calls.withLockedValue { $0.append(keys); return $0.count - 1 }
        while !opened.withLockedValue({ $0.all || $0.calls.contains(call) }) {
            try await Task.sleep(for: .milliseconds(2))
        }
        if call == failing { throw Refused() }
        return Dictionary(uniqueKeysWithValues: keys.filter { $0.isMultiple(of: 2) }.map { ($0, $0 * 10) })
    }
}

/// Waits until `condition` holds, checking every few milliseconds, and fails after ten seconds.
private func eventually(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
        try #require(ContinuousClock.now < deadline, "the condition did not come true within ten seconds")
        try await Task.sleep(for: .milliseconds(2))
    }
}
