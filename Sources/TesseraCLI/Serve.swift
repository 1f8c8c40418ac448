import ArgumentParser
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Tessera

/// `tessera serve`: the HTTP API until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP API. Refuses to start on an out-of-date schema unless --migrate is given."
    )

    @Flag(help: "Apply pending migrations before serving.")
    var migrate = false

    func run() async throws {
        let reader = await loadReader()
        let configuration: AppConfiguration
        let migrations: [Migration]
        do {
            configuration = try AppConfiguration(reader)
            migrations = try Migrator.migrations(in: AppConfiguration.databaseSettings(reader).migrationsDirectory)
        } catch {
            fail("\(error)")
        }
        let logger = makeLogger(level: configuration.logLevel, format: configuration.logFormat)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let app = buildApplication(configuration, migrations: migrations, migrateFirst: migrate, metricsRegistry: registry, logger: logger)
        // SIGTERM or SIGINT: stop accepting, let requests in flight finish within the grace period, close the pool.
        var group = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
        do {
            try await ServiceGroup(configuration: group).run()
            logger.info("stopped")
        } catch let error as MigrationError {
            fail("\(error)")
        } catch let error as DeadlineExceeded {
            fail("\(error)")
        }
    }
}
