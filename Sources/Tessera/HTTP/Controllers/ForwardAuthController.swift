import Foundation
import HTTPTypes
import Hummingbird

/// `GET /api/auth`: forward authentication for proxies such as nginx `auth_request`.
///
/// The proxy authenticates with a verifier key in `X-API-Key`; `Authorization: Bearer <token>` is the end user's
/// token being checked, and each `?scope=` is required. The answer is in the status and headers, so a proxy can
/// act on it without reading a body.
struct ForwardAuthController {
    let service: TokenService

    var endpoints: RouteCollection<CallerRequestContext> {
        RouteCollection(context: CallerRequestContext.self)
            .get(use: check)
    }

    /// `204` with `X-Auth-*` headers when the token is active and has every scope; `429` when its own rate limit is
    /// spent; `401` or `403` otherwise.
    @Sendable func check(_ request: Request, context: CallerRequestContext) async throws -> Response {
        var reader = QueryReader(request.uri.queryParameters, allowed: ["scope"])
        let scopes = request.uri.queryParameters.getAll("scope")
        for (index, scope) in scopes.enumerated() {
            if !Scope.isValid(scope) {
                reader.fail("scope[\(index)]", Scope.grammar)
            } else if scopes[..<index].contains(scope) {
                reader.fail("scope[\(index)]", "repeats the scope '\(scope)'")
            }
        }
        if scopes.count > Scope.maximumCount { reader.fail("scope", "may be given at most \(Scope.maximumCount) times") }
        guard reader.errors.isEmpty else { throw APIError.validation(reader.errors) }

        guard let authorization = request.headers[.authorization] else { throw APIError.tokenMissing }
        guard let token = Credentials.bearerToken(authorization) else { throw APIError.tokenRejected(.malformed, requiredScopes: scopes) }
        switch try await service.verify(
            String(token), requiredScopes: scopes, by: Verifier(name: context.caller.name, clientAddress: context.forwardedClientAddress),
            spending: context.budgetCharge, logger: context.logger) {
        case .active(let record):
            // A header cannot carry every user id exactly (white space at either end, control characters): refuse
            // rather than pass the upstream a different user.
            guard Self.survivesAHeader(record.userID) else {
                context.logger.notice("forward auth refused: user id cannot be passed in a header", metadata: ["token.id": "\(record.id.lowercasedString)"])
                throw APIError.userIDNotForwardable
            }
            return Response(
                status: .noContent,
                headers: [
                    .authUserID: record.userID,
                    .authScopes: record.scopes.joined(separator: " "),
                    .authTokenID: record.id.lowercasedString,
                ]
            )
        case .inactive(let reason):
            context.logger.info("forward auth refused", metadata: ["code": "\(reason.rawValue)", "caller": "\(context.caller.name)"])
            throw APIError.tokenRejected(reason, requiredScopes: scopes)
        case .rateLimited(let limit, let decision):
            context.logger.info("forward auth refused", metadata: ["code": "\(Verification.rateLimitedCode)", "caller": "\(context.caller.name)"])
            throw APIError.tooManyRequests(decision, policy: limit)
        }
    }
}

extension ForwardAuthController {
    /// Whether `value` goes through an HTTP field unchanged: not empty, no white space at either end, no control
    /// characters (which HTTP field values may not hold, and which HTTPTypes would replace).
    static func survivesAHeader(_ value: String) -> Bool {
        guard let first = value.unicodeScalars.first, let last = value.unicodeScalars.last else { return false }
        return ![first, last].contains(where: { $0.properties.isWhitespace })
            && !value.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}

extension APIError {
    /// `403`: the token is active, but its user id cannot be passed to the upstream exactly.
    static let userIDNotForwardable = APIError(
        .forbidden,
        type: "urn:tessera:problem:user-id-not-forwardable",
        detail: "The token's user id cannot be passed in an X-Auth-User-Id header unchanged; reissue it for an exact user id."
    )

    /// `401` with a bare challenge (RFC 6750 3.1): the request carried no token at all.
    static let tokenMissing = APIError(
        .unauthorized,
        type: "urn:tessera:problem:invalid-token",
        detail: "Send the token to check as Authorization: Bearer <token>.",
        headers: [.wwwAuthenticate: #"Bearer realm="tessera""#]
    )

    /// `401` (`error="invalid_token"`) for a token that is not active, `403` (`error="insufficient_scope"`) for one
    /// that lacks a required scope: RFC 6750's challenges, so proxies and clients can tell them apart.
    static func tokenRejected(_ reason: InactiveReason, requiredScopes: [String]) -> APIError {
        if reason == .wrongAudience || reason == .ipNotAllowed {
            // A valid token, but not for this proxy or from this client: a new token would not help, so no challenge.
            return APIError(
                .forbidden,
                type: "urn:tessera:problem:token-not-allowed",
                detail: "The token may not be used here (\(reason.rawValue))."
            )
        }
        if reason == .insufficientScope {
            let scope = requiredScopes.joined(separator: " ")
            return APIError(
                .forbidden,
                type: "urn:tessera:problem:insufficient-scope",
                detail: "The token does not carry every required scope.",
                headers: [.wwwAuthenticate: #"Bearer realm="tessera", error="insufficient_scope", scope="\#(scope)""#]
            )
        }
        return APIError(
            .unauthorized,
            type: "urn:tessera:problem:invalid-token",
            detail: "The token is not active (\(reason.rawValue)).",
            headers: [.wwwAuthenticate: #"Bearer realm="tessera", error="invalid_token""#]
        )
    }
}

extension HTTPField.Name {
    static let authUserID = Self("X-Auth-User-Id")!
    static let authScopes = Self("X-Auth-Scopes")!
    static let authTokenID = Self("X-Auth-Token-Id")!
}
