import Foundation
import HTTPTypes
import Hummingbird

/// `/api/auth` (any method, and any path under it): forward authentication for proxies such as nginx
/// `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth` and Envoy `ext_authz`.
///
/// The proxy authenticates with a verifier key in `X-API-Key`; `Authorization: Bearer <token>` is the end user's
/// token being checked. What it must cover comes from the rule table (`FORWARD_AUTH_RULES`), matched against the
/// original request, or else from each `?scope=`. The answer is in the status and headers, so a proxy can act on it
/// without reading a body.
struct ForwardAuthController {
    let service: TokenService
    /// What a request let through is answered: `204`, or `200` for Envoy.
    let successStatus: HTTPResponse.Status
    /// The rule table, if one is configured.
    let rules: ForwardAuthRules?

    /// Where forward auth is mounted; under it, the path is the request a proxy asks about (Envoy).
    static let path = "api/auth"

    /// Every standard method, at `/api/auth` and at any path under it; the body is never read.
    var endpoints: RouteCollection<CallerRequestContext> {
        let routes = RouteCollection(context: CallerRequestContext.self)
        for method in Self.methods {
            routes.on("", method: method, use: check)
            routes.on("**", method: method, use: check)
        }
        return routes
    }

    /// The methods forward auth answers: every method in IANA's HTTP Method Registry but `CONNECT` and `PRI` (WebDAV's
    /// and the others a proxy may pass on included).
    static let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options, .trace] + [
        "ACL", "BASELINE-CONTROL", "BIND", "CHECKIN", "CHECKOUT", "COPY", "LABEL", "LINK", "LOCK", "MERGE", "MKACTIVITY", "MKCALENDAR",
        "MKCOL", "MKREDIRECTREF", "MKWORKSPACE", "MOVE", "ORDERPATCH", "PROPFIND", "PROPPATCH", "QUERY", "REBIND", "REPORT", "SEARCH",
        "UNBIND", "UNCHECKOUT", "UNLINK", "UNLOCK", "UPDATE", "UPDATEREDIRECTREF", "VERSION-CONTROL",
    ].compactMap(HTTPRequest.Method.init(rawValue:))

    /// The request a proxy asks about when it came as a path under `/api/auth` (Envoy): the method, and the path
    /// and query after the prefix. `/api/auth/` alone is `/api/auth`, whose query carries `?scope=`.
    static func requestInPath(of request: Request) -> ForwardedRequest? {
        let prefix = "/" + path + "/"
        guard let target = request.head.path, target.hasPrefix(prefix) else { return nil }
        let original = target.dropFirst(prefix.utf8.count - 1)
        guard !original.hasPrefix("/?"), original != "/" else { return nil }
        return ForwardedRequest(method: request.method.rawValue, path: String(original))
    }

    /// The success status with every `X-Auth-*` header when the rules let the request through (as anonymous, or with
    /// an active token covering the scopes); `429` when the token's own rate limit is spent; `401` or `403` otherwise.
    @Sendable func check(_ request: Request, context: CallerRequestContext) async throws -> Response {
        // Under /api/auth the query is the original request's; at /api/auth it carries ?scope=.
        let inPath = Self.requestInPath(of: request)
        var scopes = inPath == nil ? try Self.requiredScopes(in: request) : []
        if let rules {
            guard let original = inPath ?? Self.originalRequest(in: request.headers) else {
                throw APIError.requestNotAllowed(
                    "The original request's method and path were not sent, or were sent twice (X-Forwarded-* and X-Original-*), so no rule can allow it.")
            }
            guard let (index, rule) = rules.rule(matching: original.method, path: original.path) else {
                context.logger.info("forward auth refused: no rule matches", metadata: ["method": "\(original.method)", "caller": "\(context.caller.name)"])
                throw APIError.requestNotAllowed("No forward auth rule allows \(original.method) on that path.")
            }
            switch rule.decision {
            case .deny:
                context.logger.info("forward auth refused by rule", metadata: ["rule": "\(index)", "caller": "\(context.caller.name)"])
                throw APIError.requestNotAllowed("Forward auth rule \(index) (\(rule.label)) denies this request.")
            case .anonymous where scopes.isEmpty:
                return identified(userID: "", scopes: [], tokenID: "")
            case .anonymous:
                break  // the location's own ?scope= still needs a token covering it
            case .scopes(let ruleScopes):
                scopes = ruleScopes + scopes.filter { !ruleScopes.contains($0) }
            }
        }

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
            return identified(userID: record.userID, scopes: record.scopes, tokenID: record.id.lowercasedString)
        case .inactive(let reason):
            context.logger.info("forward auth refused", metadata: ["code": "\(reason.rawValue)", "caller": "\(context.caller.name)"])
            throw APIError.tokenRejected(reason, requiredScopes: scopes)
        case .rateLimited(let limit, let decision):
            context.logger.info("forward auth refused", metadata: ["code": "\(Verification.rateLimitedCode)", "caller": "\(context.caller.name)"])
            throw APIError.tooManyRequests(decision, policy: limit)
        }
    }

    /// The success answer, with every `X-Auth-*` header set (empty for an anonymous request), so that a copy the
    /// client sent can never reach the upstream through a proxy that only adds what it is given.
    private func identified(userID: String, scopes: [String], tokenID: String) -> Response {
        Response(status: successStatus, headers: [.authUserID: userID, .authScopes: scopes.joined(separator: " "), .authTokenID: tokenID])
    }

    /// The original request as Traefik and Caddy send it (`X-Forwarded-Method`, `X-Forwarded-Uri`), else as nginx
    /// configurations usually do (`X-Original-Method`, `X-Original-URI`); `nil` when neither pair is whole, or when
    /// both kinds are present: nginx passes the client's own headers on to the auth request, so a client could
    /// otherwise name the request to check.
    static func originalRequest(in headers: HTTPFields) -> ForwardedRequest? {
        let forwarded = (headers[.forwardedMethod], headers[.forwardedURI])
        let original = (headers[.originalMethod], headers[.originalURI])
        let namesBothKinds = [forwarded.0, forwarded.1].contains { $0 != nil } && [original.0, original.1].contains { $0 != nil }
        guard !namesBothKinds else { return nil }
        if let method = forwarded.0, let uri = forwarded.1 { return ForwardedRequest(method: method, path: uri) }
        if let method = original.0, let uri = original.1 { return ForwardedRequest(method: method, path: uri) }
        return nil
    }

    /// Each `?scope=`, checked: a bad or repeated scope, too many, or another parameter is a `400`.
    static func requiredScopes(in request: Request) throws -> [String] {
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
        return scopes
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
    /// `403`: the rule table does not let the original request through, whatever the token.
    static func requestNotAllowed(_ detail: String) -> APIError {
        APIError(.forbidden, type: "urn:tessera:problem:request-not-allowed", detail: detail)
    }

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
    static let forwardedMethod = Self("X-Forwarded-Method")!
    static let forwardedURI = Self("X-Forwarded-Uri")!
    static let originalMethod = Self("X-Original-Method")!
    static let originalURI = Self("X-Original-URI")!
}
