import HTTPTypes
import Hummingbird

/// Answers `413` at once, and closes the connection, when a request declares a `Content-Length` larger than any
/// route reads: waiting for a body that will be refused anyway only holds the connection open.
struct DeclaredBodySizeMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The largest body any route reads (`MAX_BODY_BYTES`).
    let maximumSize: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let declared = request.headers[.contentLength], declared.utf8.count > 18 || (Int(declared) ?? 0) > maximumSize {
            throw APIError.contentTooLarge
        }
        return try await next(request, context)
    }
}

extension APIError {
    /// `413` for a body past `MAX_BODY_BYTES`, closing the connection rather than reading the rest.
    static let contentTooLarge = APIError(.contentTooLarge, headers: [.connection: "close"])

    /// `400` for a request whose framing cannot be read: a malformed chunked body, an unknown `Transfer-Encoding`.
    static let unreadableBody = APIError(
        .badRequest,
        type: "urn:tessera:problem:malformed-body",
        detail: "The request body could not be read: its chunked encoding is malformed or its Transfer-Encoding is not supported.",
        headers: [.connection: "close"]
    )
}
