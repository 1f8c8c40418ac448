import Foundation
import Logging
import Metrics
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Streaming replicas for verification lookups, each used only while it is reachable and replays within
/// `maximumLag` of the primary.
///
/// A replica may not have seen a recent change yet, so what it answers is trusted only when nothing can be missing:
/// the invalidation feed (which reads the primary) must be current, and the token must not have changed within the
/// lag bound; otherwise, and for a token the replica does not know (it may be new), the primary answers.
public final class ReadReplicas: Service, Sendable {
    /// One replica: its pool, its lookups and what the last check found.
    final class Replica: Sendable {
        let name: String
        let client: PostgresClient
        let lookups: LookupBatcher<[UInt8], TokenRecord>
        /// Whether the last check reached it and found it within the lag bound.
        let isUsable = Atomic<Bool>(false)
        let lagSeconds: Gauge
        let reads: Counter

        init(name: String, client: PostgresClient, timeout: Duration, preparesStatements: Bool) {
            self.name = name
            self.client = client
            self.lookups = PostgresTokenRepository.lookupBatcher(
                statements: StatementClient(client: client, address: name, prepares: preparesStatements), timeout: timeout)
            self.lagSeconds = Gauge(label: "tessera_replica_lag_seconds", dimensions: [("replica", name)])
            self.reads = Counter(label: "tessera_replica_lookups_total", dimensions: [("replica", name)])
        }
    }

    let replicas: [Replica]
    let primary: PostgresClient
    let changes: RecentChanges
    let maximumLag: Duration
    let logger: Logger
    private let next = Atomic<Int>(0)
    /// How often the primary's WAL position is sampled and every replica checked.
    static let checkInterval = Duration.milliseconds(100)

    /// Replicas at `urls`, checked against `primary`; `changes` must observe the invalidation feed.
    public init(
        urls: [DatabaseURL], primary: PostgresClient, poolSize: Int, timeout: Duration, maximumLag: Duration, changes: RecentChanges,
        preparesStatements: Bool = true, logger: Logger
    ) {
        self.replicas = urls.map { url in
            Replica(
                name: url.address,
                client: PostgresClient(configuration: url.poolConfiguration(size: poolSize, timeout: timeout), backgroundLogger: logger),
                timeout: timeout,
                preparesStatements: preparesStatements)
        }
        self.primary = primary
        self.changes = changes
        self.maximumLag = maximumLag
        self.logger = logger
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            for replica in replicas { group.addTask { await replica.client.run() } }
            await monitor()
            group.cancelAll()
        }
    }

    /// A replica to read from now, taking turns, or `nil` when none is usable or the feed is not current.
    func reader() -> Replica? {
        guard changes.isCurrent else { return nil }
        let start = next.wrappingAdd(1, ordering: .relaxed).oldValue
        for offset in 0..<replicas.count {
            let replica = replicas[(start + offset) % replicas.count]
            if replica.isUsable.load(ordering: .relaxed) { return replica }
        }
        return nil
    }

    /// Samples the primary's WAL position and checks every replica against the samples, until shutdown.
    private func monitor() async {
        // (when, the primary's WAL position then), newest last, reaching back past the lag bound.
        var samples: [(at: ContinuousClock.Instant, position: Int64)] = []
        var states: [String: String] = [:]
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let started = ContinuousClock.now
            if let position = try? await query(primary, "SELECT (pg_current_wal_lsn() - '0/0')::int8", as: Int64.self) {
                samples.append((started, position))
                samples.removeAll { started - $0.at > maximumLag + .seconds(2) }
            }
            for replica in replicas {
                let state = await check(replica, against: samples, now: started)
                if states[replica.name] != state {
                    let metadata: Logger.Metadata = ["replica": "\(replica.name)", "state": "\(state)"]
                    if state.hasPrefix("usable") { logger.notice("read replica in use", metadata: metadata) } else { logger.warning("read replica skipped: lookups go to the primary", metadata: metadata) }
                    states[replica.name] = state
                }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(until: started + Self.checkInterval) }
        }
    }

    /// Checks one replica and records the result; returns its state in words, for the log.
    private func check(_ replica: Replica, against samples: [(at: ContinuousClock.Instant, position: Int64)], now: ContinuousClock.Instant) async -> String {
        let answer = try? await query(replica.client, "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0')::int8", as: (Bool, Int64?).self)
        guard let (inRecovery, replayed) = answer else {
            replica.isUsable.store(false, ordering: .relaxed)
            return "unreachable"
        }
        guard inRecovery else {
            // Not a standby: its data is as current as any primary's, but the operator should know.
            replica.isUsable.store(true, ordering: .relaxed)
            replica.lagSeconds.record(0)
            return "usable, though it is not a standby (not in recovery)"
        }
        guard let replayed else {
            replica.isUsable.store(false, ordering: .relaxed)
            return "a standby that reports no replay position"
        }
        // It has replayed everything the primary had written at the newest sample at or below its position.
        guard let caughtUp = samples.last(where: { $0.position <= replayed }) else {
            replica.isUsable.store(false, ordering: .relaxed)
            replica.lagSeconds.record(Double((maximumLag + .seconds(2)).nanoseconds) / 1e9)
            return "lagging beyond \(maximumLag)"
        }
        let lag = samples.last.map { $0.position <= replayed } == true ? .zero : now - caughtUp.at
        replica.lagSeconds.record(Double(lag.nanoseconds) / 1e9)
        let usable = lag <= maximumLag
        replica.isUsable.store(usable, ordering: .relaxed)
        return usable ? "usable" : "lagging beyond \(maximumLag)"
    }

    /// The first row of `query` on `client`, within a second.
    private func query<each Column: PostgresDecodable & Sendable>(
        _ client: PostgresClient, _ query: PostgresQuery, as type: (repeat each Column).Type
    ) async throws -> (repeat each Column) {
        try await withDeadline(.seconds(1), "no answer within 1 second") { [logger] in
            let rows = try await client.query(query, logger: logger)
            for try await row in rows.decode((repeat each Column).self) { return row }
            throw StorageError.missingRow
        }
    }
}

/// The tokens changed recently, heard from the invalidation feed: what a lagging replica may not have replayed yet.
public final class RecentChanges: TokenChangeObserver, Sendable {
    /// How long a change counts as recent: longer than any replica in use may lag.
    let window: Duration
    /// How far behind the feed may be while replica answers are trusted.
    let maximumStaleness: Duration
    private struct State {
        var changed: [UUID: ContinuousClock.Instant] = [:]
        var everythingChanged: ContinuousClock.Instant?
        var currentThrough: ContinuousClock.Instant?
    }
    private let state = Mutex(State())

    /// Tracks changes for `window` (the replicas' lag bound plus a margin).
    public init(window: Duration, maximumStaleness: Duration = .milliseconds(100)) {
        self.window = window
        self.maximumStaleness = maximumStaleness
    }

    /// Whether the feed has delivered every change committed up to `maximumStaleness` ago.
    var isCurrent: Bool {
        let now = ContinuousClock.now
        return state.withLock { $0.currentThrough.map { now - $0 <= maximumStaleness } ?? false }
    }

    /// Whether a replica's record of token `id` can be trusted: nothing about it (or every token) changed recently.
    func isSettled(_ id: UUID) -> Bool {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard let through = state.currentThrough, now - through <= maximumStaleness else { return false }
            if let everything = state.everythingChanged, now - everything <= window { return false }
            if let changed = state.changed[id], now - changed <= window { return false }
            return true
        }
    }

    public func changesDelivered(through instant: ContinuousClock.Instant) {
        state.withLock { state in
            if state.currentThrough.map({ $0 < instant }) ?? true { state.currentThrough = instant }
            state.changed = state.changed.filter { instant - $0.value <= window }
        }
    }

    public func changesMissed() {
        // Whatever was missed counts as changed now, for every token.
        state.withLock { state in
            state.currentThrough = nil
            state.everythingChanged = .now
        }
    }

    public func tokenChanged(id: UUID) {
        state.withLock { $0.changed[id] = .now }
    }

    public func allTokensChanged() {
        state.withLock { $0.everythingChanged = .now }
    }
}
