import HTTPTypes
import Hummingbird

/// Sets the headers every response carries: no caching, no sniffing, no referrer, no active content, the request id.
///
/// It also adopts a sane `X-Request-Id` sent by the caller, so a request can be followed across services; the id
/// is in every log line of the request.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let id = request.headers[.requestID], Self.isSane(requestID: id) {
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

extension HTTPField.Name {
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let requestID = Self("X-Request-Id")!
    static let apiKey = Self("X-API-Key")!
    static let xForwardedFor = Self("X-Forwarded-For")!
}
