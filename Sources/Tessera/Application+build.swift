import Hummingbird
import HummingbirdAuth
import Logging
import PostgresNIO
import ServiceLifecycle

/// The composition root for production: PostgreSQL storage, the schema checked (or migrated) before the server starts.
public func buildApplication(
    _ configuration: AppConfiguration,
    migrations: [Migration],
    migrateFirst: Bool,
    logger: Logger
) -> some ApplicationProtocol {
    let client = PostgresClient(configuration: configuration.databaseURL.clientConfiguration, backgroundLogger: logger)
    let migrator = Migrator(client: client, migrations: migrations)
    var app = buildApplication(configuration, repository: PostgresTokenRepository(client: client), logger: logger)
    app.addServices(client)
    app.beforeServerStarts {
        try await withDeadline(.seconds(30), "PostgreSQL at \(configuration.databaseURL) could not be reached within 30 seconds (the log above says why)") {
            if migrateFirst {
                try await migrator.migrate(logger: logger)
            } else {
                try await migrator.checkSchemaIsCurrent(logger: logger)
            }
        }
    }
    return app
}

/// The composition root over any repository: tests build the same application with an in-memory one.
public func buildApplication(
    _ configuration: AppConfiguration,
    repository: some TokenRepository,
    logger: Logger
) -> Application<RouterResponder<TesseraRequestContext>> {
    let service = TokenService(repository: repository, hasher: configuration.hasher, prefix: configuration.tokenPrefix)
    return Application(
        router: buildRouter(service: service, apiKeys: configuration.apiKeys),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        logger: logger
    )
}

/// Every route, with the middleware that guards it.
func buildRouter(service: TokenService, apiKeys: APIKeyRing) -> Router<TesseraRequestContext> {
    let router = Router(context: TesseraRequestContext.self)
    router.add(middleware: SecurityHeadersMiddleware())
    router.add(middleware: ProblemMiddleware())
    router.get("healthz") { _, _ in HealthStatus(status: "ok") }

    let api = router.group("api").add(middleware: APIKeyAuthenticator(keys: apiKeys))
    api.group("tokens/verify", context: VerifierRequestContext.self)
        .addRoutes(VerificationController(service: service).endpoints)
    api.group("tokens", context: AdminRequestContext.self)
        .addRoutes(TokenController(service: service).endpoints)
    return router
}

/// The body of `/healthz`.
struct HealthStatus: ResponseEncodable {
    var status: String
}

/// Why an operation given a deadline did not finish.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let description: String
}

/// Runs `operation`, throwing ``DeadlineExceeded`` with `message` if it takes longer than `duration`.
func withDeadline<Result: Sendable>(
    _ duration: Duration,
    _ message: @autoclosure () -> String,
    operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let message = message()
    return try await withThrowingTaskGroup(of: Result.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: duration)
            throw DeadlineExceeded(description: message)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
