import HTTPTypes
import Hummingbird
import Logging

/// Turns every error a handler throws into a problem response; unexpected ones become a generic `500`.
///
/// The detail of an unexpected error goes to the log with the request id, never to the client.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            // Hummingbird's own errors (unknown route, body too large): keep their status, drop their text.
            return ProblemDetails(type: "about:blank", title: error.status.reasonPhrase, status: error.status.code, requestId: context.requestID)
                .response(status: error.status)
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

/// Sets the headers every response carries: no caching, no sniffing, no referrer, no active content, the request id.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.cacheControl] = "no-store"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.referrerPolicy] = "no-referrer"
        response.headers[.contentSecurityPolicy] = "default-src 'none'; frame-ancestors 'none'"
        response.headers[.requestID] = context.requestID
        return response
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let requestID = Self("X-Request-Id")!
    static let apiKey = Self("X-API-Key")!
}
