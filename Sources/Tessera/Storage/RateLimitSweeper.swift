import Logging
import PostgresNIO
import ServiceLifecycle

/// Deletes fully refilled rate limit entries from PostgreSQL every minute, so the table holds only keys in use.
struct RateLimitSweeper: Service {
    let client: PostgresClient
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(60)) }
            guard !Task.isShuttingDownGracefully else { break }
            do {
                try await PostgresRateLimitStore.sweep(client: client, logger: logger)
            } catch {
                logger.warning("could not sweep rate limits", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }
}
