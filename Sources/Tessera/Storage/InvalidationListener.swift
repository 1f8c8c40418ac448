import Foundation
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// The PostgreSQL channel on which revocations, rotations and purges are announced.
enum TokenChannel {
    static let name = "tessera_tokens"
    /// The payload that means "forget every token" (a purge).
    static let everything = "*"
}

/// Keeps a dedicated connection LISTENing for token changes and evicts them from the verification cache.
///
/// The cache serves only while this listener is connected; on every (re)connection it starts empty.
final class InvalidationListener: Service, Sendable {
    let databaseURL: DatabaseURL
    let cache: VerificationCache
    let logger: Logger

    init(databaseURL: DatabaseURL, cache: VerificationCache, logger: Logger) {
        self.databaseURL = databaseURL
        self.cache = cache
        self.logger = logger
    }

    func run() async throws {
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                try await cancelWhenGracefulShutdown { try await self.listenOnce() }
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                logger.warning("verification cache bypassed: invalidation listener disconnected", metadata: ["error": "\(String(reflecting: error))"])
            }
            cache.listenerDisconnected()
            // Reconnect quickly after a long healthy connection, backing off while PostgreSQL stays away.
            failures = ContinuousClock.now - started > .seconds(10) ? 1 : failures + 1
            let delay = Duration.milliseconds(min(2_000, 100 * failures))
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
        }
        cache.listenerDisconnected()
    }

    /// Connects, LISTENs and evicts until the connection ends.
    private func listenOnce() async throws {
        let connection = try await PostgresConnection.connect(
            configuration: try databaseURL.connectionConfiguration(),
            id: 1,
            logger: logger
        )
        do {
            try await connection.listen(on: TokenChannel.name) { notifications in
                cache.listenerConnected()
                logger.debug("invalidation listener connected")
                for try await notification in notifications {
                    if notification.payload == TokenChannel.everything {
                        cache.invalidateAll()
                    } else if let id = UUID(uuidString: notification.payload) {
                        cache.invalidate(tokenID: id)
                    }
                }
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
        throw InvalidationListenerError.connectionEnded
    }
}

enum InvalidationListenerError: Error {
    case connectionEnded
}
