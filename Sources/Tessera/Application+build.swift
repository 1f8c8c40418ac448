import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdAuth
import Logging
import Metrics
import Prometheus
import PostgresNIO
import ServiceLifecycle
import TokenCrypto

/// The composition root for production: PostgreSQL storage, the schema checked (or migrated) before the server starts.
///
/// `metricsRegistry` is the Prometheus registry that `MetricsSystem` was bootstrapped with; `/metrics` serves it.
public func buildApplication(
    _ configuration: AppConfiguration,
    migrations: [Migration],
    migrateFirst: Bool,
    metricsRegistry: PrometheusCollectorRegistry? = nil,
    logger: Logger
) -> some ApplicationProtocol {
    let client = PostgresClient(
        configuration: configuration.databaseURL.poolConfiguration(size: configuration.databasePoolSize, timeout: configuration.databaseTimeout),
        backgroundLogger: logger)
    let migrator = Migrator(client: client, migrations: migrations)
    for credential in configuration.apiKeys.credentials where credential.isShort {
        logger.warning(
            "API key shorter than \(APIKeyRing.recommendedSecretLength) characters: prefer a generated one (tessera api-key generate)",
            metadata: ["key": "\(credential.name)"]
        )
    }
    for url in [configuration.databaseURL] + configuration.databaseReadURLs where url.isExposedInTransit {
        logger.warning(
            "the database is reached over the network with sslmode=\(url.tlsMode.rawValue): use sslmode=verify-full (with sslrootcert=<CA file> for a private CA) so the link cannot be read or the server impersonated",
            metadata: ["database": "\(url.address)"]
        )
    }
    if metricsRegistry != nil, configuration.metricsKey == nil, !["127.0.0.1", "::1", "localhost"].contains(configuration.host) {
        logger.notice("/metrics is open to anyone who can reach \(configuration.host):\(configuration.port); set METRICS_KEY to require a bearer key")
    }
    let timeout = configuration.databaseTimeout
    let cache = configuration.verifyCache.map { VerificationCache(timeToLive: $0.timeToLive, capacity: $0.capacity) }
    var replicas: ReadReplicas?
    if !configuration.databaseReadURLs.isEmpty {
        replicas = ReadReplicas(
            urls: configuration.databaseReadURLs, primary: client, poolSize: configuration.databasePoolSize, timeout: timeout,
            maximumLag: configuration.databaseReadMaximumLag,
            changes: RecentChanges(window: configuration.databaseReadMaximumLag + .seconds(1)),
            preparesStatements: configuration.databasePreparesStatements, logger: logger
        )
        logger.notice("verification lookups read replicas when they can", metadata: ["replicas": "\(configuration.databaseReadURLs.map(\.address))"])
    }
    // One StatementClient for every store on the primary, so that a pooler found to lose prepared statements is
    // found once.
    let statements = StatementClient(client: client, address: configuration.databaseURL.address, prepares: configuration.databasePreparesStatements)
    var repository = PostgresTokenRepository(statements: statements, timeout: timeout, replicas: replicas)
    repository.inFlight = Meter(label: "tessera_db_operations_in_flight")
    var services: [any Service] = [client]
    // The invalidation feed tells the replica reads, then the cache, which tokens changed: in that order, so a lookup
    // that misses the just-evicted cache entry cannot read the change's stale replica copy and cache it again.
    let observers: [any TokenChangeObserver] = [replicas?.changes as (any TokenChangeObserver)?, cache].compactMap { $0 }
    if !observers.isEmpty { services.append(InvalidationFeed(client: client, observers: observers, logger: logger)) }
    if let replicas { services.append(replicas) }
    var rateLimiters: RateLimiters?
    if configuration.rateLimits.sharedInPostgres {
        rateLimiters = RateLimiters(configuration.rateLimits, statements: statements, timeout: configuration.databaseTimeout)
        services.append(RateLimitSweeper(client: client, logger: logger))
    }
    var app = buildApplication(
        configuration, repository: repository, services: services, cache: cache, rateLimiters: rateLimiters,
        metricsRegistry: metricsRegistry, logger: logger
    ) { logger in
        // Ready when PostgreSQL answers within the timeout and the schema is current.
        (try? await withDeadline(timeout, "readiness check timed out") { try await migrator.checkSchemaIsCurrent(logger: logger) }) != nil
    }
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
/// `services` (such as the PostgreSQL client the repository uses) start before, and stop after, the service's own
/// background work. `isReady` answers `/readyz`; without one the service counts as ready whenever it runs.
public func buildApplication(
    _ configuration: AppConfiguration,
    repository: some TokenRepository,
    services: [any Service] = [],
    cache: VerificationCache? = nil,
    rateLimiters: RateLimiters? = nil,
    metricsRegistry: PrometheusCollectorRegistry? = nil,
    logger: Logger,
    isReady: @escaping @Sendable (Logger) async -> Bool = { _ in true }
) -> Application<RouterResponder<TesseraRequestContext>> {
    let rateLimiters = rateLimiters ?? RateLimiters(configuration.rateLimits)
    let metrics = ServiceMetrics(
        rateLimitPolicies: [rateLimiters.admin, rateLimiters.verify, rateLimiters.endClient, rateLimiters.authFailures].map(\.policy.name),
        databasePoolSize: configuration.databasePoolSize
    )
    let usage = UsageRecorder(repository: repository, interval: configuration.lastUsedFlushInterval, logger: logger)
    let service = TokenService(
        repository: repository, hasher: configuration.hasher, prefix: configuration.tokenPrefix, usage: usage, metrics: metrics, cache: cache,
        tokenLimits: rateLimiters.tokens)
    let router = buildRouter(
        service: service,
        configuration: configuration,
        rateLimiters: rateLimiters,
        metrics: metrics,
        metricsRegistry: metricsRegistry,
        logger: logger,
        isReady: isReady
    )
    // A service group stops its services in reverse order: the usage recorder's last flush runs before the
    // database client closes.
    let (idleTimeout, readTimeout) = (configuration.idleTimeout, configuration.readTimeout)
    return Application(
        router: router,
        server: .http1(idleTimeout: idleTimeout, readTimeout: readTimeout),
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: nil,
            availableConnectionsDelegate: MaximumAvailableConnections(configuration.maximumConnections, logger: logger)
        ),
        services: services + [usage],
        logger: logger
    )
}

/// Every route, with the middleware that guards it.
func buildRouter(
    service: TokenService,
    configuration: AppConfiguration,
    rateLimiters: RateLimiters,
    metrics: ServiceMetrics,
    metricsRegistry: PrometheusCollectorRegistry?,
    logger: Logger,
    isReady: @escaping @Sendable (Logger) async -> Bool
) -> Router<TesseraRequestContext> {
    let router = Router(context: TesseraRequestContext.self)
    let routeTable = RouteTable()
    router.add(middleware: SecurityHeadersMiddleware())
    // Outside the problem middleware, so requests are counted with the status the client finally got.
    router.add(middleware: RequestMetricsMiddleware())
    router.add(middleware: ProblemMiddleware(metrics: metrics))
    router.add(middleware: DeclaredBodySizeMiddleware(maximumSize: configuration.maximumBodySize))
    router.add(middleware: ClientAddressMiddleware(resolver: configuration.clientAddresses))
    router.add(middleware: MethodNotAllowedMiddleware(routes: routeTable))

    router.get("healthz") { _, _ in HealthStatus(status: "ok") }
    router.get("readyz") { _, context in
        guard await isReady(context.logger) else { throw APIError.notReady }
        return HealthStatus(status: "ready", verifyCache: service.cacheStatus)
    }
    WebPage(directory: configuration.publicDirectory, logger: logger)?.addRoutes(to: router)
    if let metricsRegistry {
        let requiredKey = configuration.metricsKey.map { Blake2b.hash(utf8: $0) }
        router.get("metrics") { request, _ in
            if let requiredKey {
                // Compared as fixed-length digests in constant time, like API keys.
                let presented = request.headers[.authorization].flatMap(Credentials.bearerToken).map { Blake2b.hash(utf8: String($0)) }
                guard let presented, ConstantTime.equals(presented, requiredKey) else { throw APIError.metricsKeyRequired }
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metricsRegistry.emitToBuffer()))
            )
        }
    }

    let authenticator = APIKeyAuthenticator(keys: configuration.apiKeys, failures: rateLimiters.authFailures, metrics: metrics)
    var proxyAuthenticator = authenticator
    proxyAuthenticator.readsAuthorizationHeader = false  // there it carries the end user's token
    /// Mounts `routes` at `path` for callers with `role`: API key (`401`), role (`403`), then budgets (`429`), so a
    /// forbidden caller spends no budget.
    func mount(
        _ routes: RouteCollection<CallerRequestContext>,
        at path: RouterPath,
        for role: APIKeyRole,
        authenticator: APIKeyAuthenticator = authenticator,
        budgets: [RateLimitMiddleware]
    ) {
        var group = router.group(path)
            .add(middleware: authenticator)
            .add(middleware: AuthorizationPolicyMiddleware(RolePolicy<Caller>(role), deniedError: APIError.forbidden(needing: role), context: TesseraRequestContext.self))
        for budget in budgets { group = group.add(middleware: budget) }
        group.group(context: CallerRequestContext.self).addRoutes(routes)
    }
    // Verification spends the key's budget only for a well-formed token; forward auth and introspection first
    // spend the end client's, when a trusted proxy names it.
    let verifyBudget = RateLimitMiddleware(budget: rateLimiters.verify, spending: .callerWhenAsked, metrics: metrics)
    let endClientBudget = RateLimitMiddleware(budget: rateLimiters.endClient, spending: .forwardedClient, metrics: metrics)
    let adminBudget = RateLimitMiddleware(budget: rateLimiters.admin, metrics: metrics)
    let bodyLimit = configuration.maximumBodySize
    mount(VerificationController(service: service, maximumBodySize: bodyLimit).endpoints, at: "api/tokens/verify", for: .verifier, budgets: [verifyBudget])
    let forwardAuth = ForwardAuthController(service: service, successStatus: configuration.forwardAuthSuccessStatus, rules: configuration.forwardAuthRules)
    mount(forwardAuth.endpoints, at: RouterPath(ForwardAuthController.path), for: .verifier, authenticator: proxyAuthenticator, budgets: [endClientBudget, verifyBudget])
    mount(IntrospectionController(service: service, maximumBodySize: bodyLimit).endpoints, at: "oauth2/introspect", for: .verifier, budgets: [endClientBudget, verifyBudget])
    mount(TokenController(
            service: service, maximumBodySize: bodyLimit, allowsEveryScope: configuration.allowsEveryScope,
            keyNames: Set(configuration.apiKeys.credentials.map(\.name))
        ).endpoints, at: "api/tokens", for: .admin, budgets: [adminBudget])
    mount(AuditController(service: service).endpoints, at: "api/audit", for: .admin, budgets: [adminBudget])
    if let keys = configuration.secretScanningKeys {
        // The signature is the credential: no API key, and failures spend the client's failed-authentication budget.
        let reports = SecretScanningController(
            service: service, keys: keys, failures: rateLimiters.authFailures, metrics: metrics, maximumBodySize: bodyLimit)
        router.post("api/secret-scanning/github", use: reports.report)
    }
    routeTable.record(router.routes)
    return router
}

/// The body of `/healthz` and `/readyz`; `/readyz` says whether the verification cache answers.
struct HealthStatus: ResponseEncodable {
    var status: String
    var verifyCache: VerificationCacheStatus?
}

extension APIError {
    /// `401` from `/metrics` when `METRICS_KEY` is set and the request does not carry it as a bearer token.
    static let metricsKeyRequired = APIError(
        .unauthorized,
        type: "urn:tessera:problem:unauthenticated",
        detail: "Send METRICS_KEY as Authorization: Bearer <key>.",
        headers: [.wwwAuthenticate: #"Bearer realm="tessera-metrics""#]
    )

    /// `503` from `/readyz`: the database cannot be reached or its schema is not current.
    static let notReady = APIError(
        .serviceUnavailable,
        type: "urn:tessera:problem:not-ready",
        detail: "The database cannot be reached or its schema is not current.",
        headers: [.retryAfter: "5"]
    )
}
