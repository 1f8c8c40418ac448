import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Records when tokens were last used, off the request path: verification notes a use in memory, and a
/// background service writes the batch to the repository every few seconds.
///
/// A token whose stored `lastUsedAt` is less than a minute old is not noted again, so each token is written at
/// most about once a minute however often it is verified, and verification itself stays a read.
public final class UsageRecorder: Service, Sendable {
    /// How stale `lastUsedAt` may get before a use is written again.
    public static let resolution: TimeInterval = 60
    /// Most distinct tokens waiting to be written; uses beyond it are dropped until the next flush.
    public let capacity: Int
    /// How often the waiting uses are written.
    public let interval: Duration

    private let repository: any TokenRepository
    private let logger: Logger
    private let pending = Mutex<[UUID: Date]>([:])
    /// When each recently written token was last written, so records read from a cache (whose `lastUsedAt` is
    /// stale) are not written again within the minute.
    private let written = Mutex<[UUID: Date]>([:])

    /// Creates a recorder writing to `repository` every `interval`.
    public init(repository: any TokenRepository, interval: Duration = .seconds(5), capacity: Int = 100_000, logger: Logger) {
        self.repository = repository
        self.interval = interval
        self.capacity = capacity
        self.logger = logger
    }

    /// Notes that `record` verified at `now`, unless its stored `lastUsedAt` is recent enough.
    public func noteUse(of record: TokenRecord, at now: Date) {
        if let lastUsed = record.lastUsedAt, now.timeIntervalSince(lastUsed) < Self.resolution { return }
        if let lastWritten = written.withLock({ $0[record.id] }), now.timeIntervalSince(lastWritten) < Self.resolution { return }
        pending.withLock { uses in
            guard uses[record.id] != nil || uses.count < capacity else { return }
            uses[record.id] = now
        }
    }

    /// How many tokens have uses waiting to be written.
    public var pendingCount: Int { pending.withLock { $0.count } }

    /// Writes every waiting use now.
    public func flush() async {
        let uses = pending.withLock { uses in
            defer { uses = [:] }
            return uses
        }
        guard !uses.isEmpty else { return }
        do {
            try await repository.recordUses(uses, logger: logger)
            written.withLock { written in
                if written.count + uses.count > capacity { written.removeAll(keepingCapacity: true) }
                written.merge(uses) { _, new in new }
            }
        } catch {
            // A failed batch is put back (newest time wins) and tried again at the next flush.
            logger.warning("could not record token use", metadata: ["tokens": "\(uses.count)", "error": "\(String(reflecting: error))"])
            pending.withLock { current in
                for (id, time) in uses where current.count < capacity || current[id] != nil {
                    current[id] = max(time, current[id] ?? time)
                }
            }
        }
    }

    /// Flushes every `interval` until graceful shutdown, then flushes once more.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            await flush()
        }
        await flush()
    }
}
