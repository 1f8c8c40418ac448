import HTTPTypes
import Hummingbird

/// Resolves the client's address (honouring trusted proxies) for the limiters and the authentication log lines.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = TesseraRequestContext
    let resolver: ClientAddressResolver

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let peer = context.remoteAddress?.ipAddress
        context.forwardedClientAddress = resolver.forwardedClientAddress(peer: peer, forwardedFor: request.headers[values: .xForwardedFor])
        context.clientAddress = context.forwardedClientAddress ?? peer ?? "unknown"
        return try await next(request, context)
    }
}
