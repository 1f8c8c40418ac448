import HTTPTypes
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
    var clientConfiguration = configuration.databaseURL.clientConfiguration
    clientConfiguration.options.maximumConnections = configuration.databasePoolSize
    clientConfiguration.options.connectTimeout = configuration.databaseTimeout
    let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
    let migrator = Migrator(client: client, migrations: migrations)
    let repository = PostgresTokenRepository(client: client, timeout: configuration.databaseTimeout)
    let timeout = configuration.databaseTimeout
    var app = buildApplication(configuration, repository: repository, logger: logger) { logger in
        // Ready when PostgreSQL answers within the timeout and the schema is current.
        (try? await withDeadline(timeout, "readiness check timed out") { try await migrator.checkSchemaIsCurrent(logger: logger) }) != nil
    }
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
///
/// `isReady` answers `/readyz`; without one the service counts as ready whenever it runs.
public func buildApplication(
    _ configuration: AppConfiguration,
    repository: some TokenRepository,
    logger: Logger,
    isReady: @escaping @Sendable (Logger) async -> Bool = { _ in true }
) -> Application<RouterResponder<TesseraRequestContext>> {
    let service = TokenService(repository: repository, hasher: configuration.hasher, prefix: configuration.tokenPrefix)
    let router = buildRouter(
        service: service,
        configuration: configuration,
        rateLimiters: RateLimiters(configuration.rateLimits),
        isReady: isReady
    )
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        logger: logger
    )
}

/// Every path the API serves and the methods it accepts there, for `405` answers (`*` is one path segment).
let routeTable: [(String, [HTTPRequest.Method])] = [
    ("/healthz", [.get]),
    ("/readyz", [.get]),
    ("/api/tokens", [.get, .post]),
    ("/api/tokens/verify", [.post]),
    ("/api/tokens/*", [.get, .delete]),
    ("/api/audit", [.get]),
]

/// Every route, with the middleware that guards it.
func buildRouter(
    service: TokenService,
    configuration: AppConfiguration,
    rateLimiters: RateLimiters,
    isReady: @escaping @Sendable (Logger) async -> Bool
) -> Router<TesseraRequestContext> {
    let router = Router(context: TesseraRequestContext.self)
    router.add(middleware: SecurityHeadersMiddleware())
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: ClientAddressMiddleware(resolver: configuration.clientAddresses))
    router.add(middleware: MethodNotAllowedMiddleware(routeTable))

    router.get("healthz") { _, _ in HealthStatus(status: "ok") }
    router.get("readyz") { _, context in
        guard await isReady(context.logger) else { throw APIError.notReady }
        return HealthStatus(status: "ready")
    }

    let api = router.group("api").add(middleware: APIKeyAuthenticator(keys: configuration.apiKeys, failures: rateLimiters.authFailures))
    api.group("tokens/verify", context: VerifierRequestContext.self)
        .add(middleware: RateLimitMiddleware(limiter: rateLimiters.verify))
        .addRoutes(VerificationController(service: service, maximumBodySize: configuration.maximumBodySize).endpoints)
    api.group("tokens", context: AdminRequestContext.self)
        .add(middleware: RateLimitMiddleware(limiter: rateLimiters.admin))
        .addRoutes(TokenController(service: service, maximumBodySize: configuration.maximumBodySize).endpoints)
    api.group("audit", context: AdminRequestContext.self)
        .add(middleware: RateLimitMiddleware(limiter: rateLimiters.admin))
        .addRoutes(AuditController(repository: service.repository).endpoints)
    return router
}

/// The body of `/healthz` and `/readyz`.
struct HealthStatus: ResponseEncodable {
    var status: String
}

extension APIError {
    /// `503` from `/readyz`: the database cannot be reached or its schema is not current.
    static let notReady = APIError(
        .serviceUnavailable,
        type: "urn:tessera:problem:not-ready",
        detail: "The database cannot be reached or its schema is not current.",
        headers: [.retryAfter: "5"]
    )
}
