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
            if error.status == .forbidden {
                context.logger.notice("caller forbidden", metadata: ["detail": "\(error.detail ?? "")"])
            }
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
