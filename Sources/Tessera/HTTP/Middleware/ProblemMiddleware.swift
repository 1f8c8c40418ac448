import HTTPTypes
import Hummingbird
import Logging
import NIOHTTP1

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
        } catch let error as HTTPParserError {
            // The client sent a body HTTP cannot frame: its mistake, not the server's.
            context.logger.info("unreadable request body", metadata: ["error": "\(error)"])
            return try APIError.unreadableBody.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            // Hummingbird's own errors (unknown route, body too large): keep their status, drop their text.
            return ProblemDetails(type: "about:blank", title: error.status.reasonPhrase, status: error.status.code, requestId: context.requestID)
                .response(status: error.status)
        } catch StorageError.unavailable(let reason) {
            context.logger.error("database unavailable", metadata: ["error": "\(reason)"])
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
