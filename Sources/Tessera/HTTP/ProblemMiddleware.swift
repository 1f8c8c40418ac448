import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO

/// Turns every error a handler throws into a problem response: database outages become `503` with
/// `Retry-After`, anything unexpected a generic `500`.
///
/// The detail of an unexpected error goes to the log with the request id, never to the client.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServiceMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            // Hummingbird's own errors (unknown route, body too large): keep their status, drop their text.
            return ProblemDetails(type: "about:blank", title: error.status.reasonPhrase, status: error.status.code, requestId: context.requestID)
                .response(status: error.status)
        } catch where DatabaseUnavailable.describes(error) {
            context.logger.error("database unavailable", metadata: ["error": "\(String(reflecting: error))"])
            metrics.databaseUnavailable.increment()
            return try APIError.databaseUnavailable.response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            return ProblemDetails(
                type: "about:blank",
                title: "Internal Server Error",
                status: 500,
                detail: "The request could not be completed. Quote the request id when reporting this.",
                requestId: context.requestID
            ).response(status: .internalServerError)
        }
    }
}

/// Recognises errors that mean PostgreSQL cannot be reached now, as opposed to a fault in a query.
enum DatabaseUnavailable {
    /// SQLSTATE classes and codes that mean "try again later": connection exceptions, shutdowns, overload.
    private static let transientStates: Set<String> = ["57P01", "57P02", "57P03", "53300", "53400"]

    /// Whether `error` says the database is unreachable, shutting down or overloaded.
    static func describes(_ error: any Error) -> Bool {
        if error is DeadlineExceeded { return true }
        if let error = error as? PostgresTransactionError {
            // BEGIN, COMMIT or ROLLBACK failing, or the work inside failing, for one of the reasons below.
            return [error.beginError, error.closureError, error.commitError, error.rollbackError].contains { $0.map(describes) ?? false }
        }
        // The pool's own errors (circuit breaker open: PostgreSQL has been unreachable for a while) come from
        // PostgresNIO's underscored module, which is not API; recognise them by type name.
        if String(reflecting: type(of: error)).hasSuffix("ConnectionPoolError") { return true }
        guard let error = error as? PSQLError else { return false }
        guard let state = error.serverInfo?[.sqlState] else {
            return [.connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled]
                .contains(error.code)
        }
        return state.hasPrefix("08") || transientStates.contains(state)
    }
}

/// Sets the headers every response carries: no caching, no sniffing, no referrer, no active content, the request id.
///
/// It also adopts a sane `X-Request-Id` sent by the caller, so a request can be followed across services; the id
/// is in every log line of the request.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let id = request.headers.value(of: .requestID), Self.isSane(requestID: id) {
            context.logger[metadataKey: "hb.request.id"] = "\(id)"
        }
        var response = try await next(request, context)
        response.headers[.cacheControl] = "no-store"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.referrerPolicy] = "no-referrer"
        // The management page sets a policy of its own; everything else may load nothing at all.
        if !response.headers.contains(.contentSecurityPolicy) {
            response.headers[.contentSecurityPolicy] = "default-src 'none'; frame-ancestors 'none'"
        }
        response.headers[.requestID] = context.requestID
        return response
    }

    /// 1-128 characters of `[A-Za-z0-9._:-]`: safe to echo and to log.
    static func isSane(requestID: String) -> Bool {
        (1...128).contains(requestID.utf8.count)
            && requestID.utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "-") }
    }
}

/// Resolves the client's address (honouring trusted proxies) for the limiters and the authentication log lines.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = TesseraRequestContext
    let resolver: ClientAddressResolver

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.clientAddress = resolver.clientAddress(
            peer: context.remoteAddress?.ipAddress,
            forwardedFor: request.headers[values: .xForwardedFor]
        )
        return try await next(request, context)
    }
}

/// Answers `405` with `Allow` when a path exists but not for the request's method.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Path patterns (`*` matches one segment) and the methods each accepts.
    let routes: [(pattern: [Substring], methods: [HTTPRequest.Method])]

    init(_ routes: [(String, [HTTPRequest.Method])]) {
        self.routes = routes.map { (pattern: $0.0.split(separator: "/"), methods: $0.1) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let segments = request.uri.path.split(separator: "/")
            guard let route = routes.first(where: { Self.matches(segments, $0.pattern) }), !route.methods.contains(request.method) else {
                throw error
            }
            throw APIError(
                .methodNotAllowed,
                type: "urn:tessera:problem:method-not-allowed",
                detail: "This path accepts \(route.methods.map(\.rawValue).joined(separator: ", ")).",
                headers: [.allow: route.methods.map(\.rawValue).joined(separator: ", ")]
            )
        }
    }

    private static func matches(_ segments: [Substring], _ pattern: [Substring]) -> Bool {
        segments.count == pattern.count && zip(segments, pattern).allSatisfy { $1 == "*" || $0 == $1 }
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let requestID = Self("X-Request-Id")!
    static let apiKey = Self("X-API-Key")!
    static let xForwardedFor = Self("X-Forwarded-For")!
}
