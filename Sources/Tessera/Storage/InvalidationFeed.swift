import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle

/// What hears of token changes through the invalidation feed: the verification cache.
public protocol TokenChangeObserver: Sendable {
    /// Every change committed before `instant` has been delivered.
    func changesDelivered(through instant: ContinuousClock.Instant)
    /// Changes may have been missed: forget everything.
    func changesMissed()
    /// The token `id` changed.
    func tokenChanged(id: UUID)
    /// Every token changed (a purge).
    func allTokensChanged()
}

/// Polls the invalidation log (`token_invalidations`) and hands each change to an observer.
///
/// One short query every `interval` through the ordinary pool: it works behind transaction poolers, where
/// `LISTEN` does not, and each answered poll proves the feed live. A poll that fails, or answers later than
/// `staleAfter`, is logged and counted, and the observer stops hearing "delivered" until polls succeed again.
public final class InvalidationFeed: Service, Sendable {
    let client: PostgresClient
    let observers: [any TokenChangeObserver]
    let interval: Duration
    let staleAfter: Duration
    let logger: Logger
    private let failures = Counter(label: "tessera_invalidation_feed_failures_total")
    private let lag = Timer(label: "tessera_invalidation_feed_poll_duration", preferredDisplayUnit: .seconds)
    private let serving = Gauge(label: "tessera_verify_cache_serving")

    /// Most changes read per query; a poll reads on until it has them all.
    static let batchSize = 1_000
    /// How long the log keeps a change; an instance that lost the feed for longer starts from empty anyway.
    static let retention = "1 hour"

    /// Creates a feed polling `client`'s database every `interval` for `observers`.
    public init(client: PostgresClient, observers: [any TokenChangeObserver], interval: Duration = .milliseconds(25), staleAfter: Duration = .milliseconds(100), logger: Logger) {
        self.client = client
        self.observers = observers
        self.interval = interval
        self.staleAfter = staleAfter
        self.logger = logger
    }

    public func run() async throws {
        var position: Int64?
        var current = false
        var lastPrune = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                position = try await withDeadline(.seconds(1), "the invalidation log did not answer within 1 second") { [position] in
                    try await self.poll(after: position)
                }
                let took = ContinuousClock.now - started
                lag.recordNanoseconds(took.nanoseconds)
                for observer in observers { observer.changesDelivered(through: started) }
                if took > staleAfter {
                    logger.warning("invalidation feed slow: verification cache bypassed meanwhile", metadata: ["poll_ms": "\(took.milliseconds)"])
                } else if !current {
                    logger.notice("invalidation feed current: verification cache serving")
                }
                current = took <= staleAfter
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                failures.increment()
                if current || position != nil {
                    logger.warning("invalidation feed lost: verification cache bypassed", metadata: ["error": "\(String(reflecting: error))"])
                }
                current = false
                position = nil  // start again from the log's end, and from an empty cache
            }
            serving.record(current ? 1 : 0)
            if started - lastPrune > .seconds(600) {
                lastPrune = started
                _ = try? await client.query("DELETE FROM token_invalidations WHERE occurred_at < now() - \(Self.retention)::interval", logger: logger)
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(until: started + self.interval) }
        }
        for observer in observers { observer.changesMissed() }
    }

    /// Delivers every change after `position` and returns the new position; with no position, starts at the log's
    /// end and tells the observer that changes were missed.
    func poll(after position: Int64?) async throws -> Int64 {
        guard var position else {
            let rows = try await client.query("SELECT seq FROM invalidation_clock", logger: logger)
            for try await end in rows.decode(Int64.self) {
                for observer in observers { observer.changesMissed() }
                return end
            }
            throw StorageError.missingRow
        }
        while true {
            let rows = try await client.query(
                "SELECT seq, token_id FROM token_invalidations WHERE seq > \(position) ORDER BY seq LIMIT \(Self.batchSize)",
                logger: logger
            )
            var read = 0
            for try await (seq, id) in rows.decode((Int64, UUID?).self) {
                for observer in observers {
                    if let id { observer.tokenChanged(id: id) } else { observer.allTokensChanged() }
                }
                position = seq
                read += 1
            }
            if read < Self.batchSize { return position }
        }
    }
}
