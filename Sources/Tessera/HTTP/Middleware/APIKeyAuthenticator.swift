import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth

/// Authenticates the API key in `X-API-Key`, `Authorization: Bearer` or HTTP Basic, as HummingbirdAuth's
/// authenticators do, and refuses the request outright when there is none.
///
/// A missing or wrong key spends one of the client address's failure budget and is a `401`, or a `429` once that
/// budget is spent; a valid key is admitted whatever its address's failures.
struct APIKeyAuthenticator: AuthenticatorMiddleware {
    typealias Context = TesseraRequestContext
    let keys: APIKeyRing
    let failures: any RateLimitStore
    let metrics: ServiceMetrics
    /// Whether `Authorization` may carry the key; off where that header carries something else (forward auth).
    var readsAuthorizationHeader = true

    /// The caller presenting a valid key, whatever its address's failures; a thrown `401`, or `429` once the
    /// client address's failure budget is spent, otherwise.
    func authenticate(request: Request, context: Context) async throws -> Caller? {
        let presented = Credentials(in: request.headers, readingAuthorization: readsAuthorizationHeader)
        if case .key(let key, let name) = presented, let caller = keys.caller(presenting: key), name == nil || name == caller.name {
            metrics.recordAuthentication(succeeded: true)
            context.logger.debug("authenticated", metadata: ["caller": .string(caller.name), "client": .string(context.clientAddress)])
            return caller
        }
        metrics.recordAuthentication(succeeded: false)
        // A neighbour's failures cannot lock out a valid key: only a failing request is counted, or refused.
        let decision = try await failures.acquire(ClientAddressResolver.limiterKey(for: context.clientAddress), logger: context.logger)
        guard decision.allowed else {
            context.logger.notice("authentication refused: too many failures", metadata: ["client": "\(context.clientAddress)", "reason": "\(presented)"])
            metrics.recordRateLimited(policy: failures.policy.name)
            throw APIError.tooManyRequests(decision, policy: failures.policy)
        }
        context.logger.notice("authentication failed", metadata: ["client": "\(context.clientAddress)", "reason": "\(presented)"])
        throw APIError.unauthenticated(presented, readingAuthorization: readsAuthorizationHeader)
    }
}

/// What a request presents as its API key.
enum Credentials: CustomStringConvertible, Equatable {
    /// No `X-API-Key`, no `Authorization`, or an empty one.
    case none
    /// An `Authorization` header that is not `Bearer <token68>` or `Basic <name:key>`: refused even beside a valid
    /// `X-API-Key`, since a request with credentials that cannot be read is not one to guess about.
    case malformed
    /// The presented key, and the key name when it came as HTTP Basic `name:key` (as OAuth clients send
    /// `client_id:client_secret`), which must then match.
    case key(String, name: String?)

    /// The key from `X-API-Key`, else from `Authorization` (`Bearer <key>`, or `Basic` of `name:key`).
    ///
    /// `X-API-Key` wins so that a proxy can authenticate with it while `Authorization` carries something else.
    init(in headers: HTTPFields, readingAuthorization: Bool = true) {
        var fromAuthorization = Credentials.none
        if readingAuthorization, let authorization = headers[.authorization] {
            if let token = Self.bearerToken(authorization) {
                fromAuthorization = .key(String(token), name: nil)
            } else if let basic = headers.basic {
                fromAuthorization = .key(basic.password, name: basic.username)
            } else {
                self = .malformed
                return
            }
        }
        if let header = headers[.apiKey] {
            let key = header.trimmingWhitespace()
            self = key.isEmpty ? .none : .key(String(key), name: nil)
        } else if case .key(let key, _) = fromAuthorization, key.isEmpty {
            self = .none
        } else {
            self = fromAuthorization
        }
    }

    /// For log lines: never the key itself.
    var description: String {
        switch self {
        case .none: "no key"
        case .malformed: "malformed Authorization header"
        case .key(_, let name): name == nil ? "unknown key" : "unknown key or name"
        }
    }

    /// The token68 of `Bearer <token68>` (scheme case-insensitive, RFC 6750), or `nil`.
    static func bearerToken(_ authorization: String) -> Substring? {
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingWhitespace()
        let body = token.utf8.reversed().drop { $0 == UInt8(ascii: "=") }
        guard !body.isEmpty, body.allSatisfy({ $0.isASCIIAlphanumeric || "-._~+/".utf8.contains($0) }) else { return nil }
        return token
    }
}

extension APIError {
    /// `401`: no API key, one that matches no configured key, or an unreadable `Authorization` header; where
    /// `Authorization` carries something else, the detail names `X-API-Key` alone.
    static func unauthenticated(_ credentials: Credentials, readingAuthorization: Bool = true) -> APIError {
        let (challenge, detail) =
            switch credentials {
            case .none where !readingAuthorization: (#"Bearer realm="tessera""#, "An API key is required, in X-API-Key.")
            case .none: (#"Bearer realm="tessera""#, "An API key is required, in X-API-Key or Authorization: Bearer.")
            case .malformed: (#"Bearer realm="tessera", error="invalid_request""#, "The Authorization header is neither 'Bearer <key>' nor 'Basic <name:key>'.")
            case .key: (#"Bearer realm="tessera", error="invalid_token""#, "The API key is not valid.")
            }
        return APIError(.unauthorized, type: "urn:tessera:problem:unauthenticated", detail: detail, headers: [.wwwAuthenticate: challenge])
    }

    /// `403`: the key is valid but its role may not use this endpoint.
    static func forbidden(needing role: APIKeyRole) -> APIError {
        APIError(.forbidden, type: "urn:tessera:problem:forbidden", detail: "This endpoint needs an API key with role '\(role.rawValue)'.")
    }
}

extension Caller: RoleProviding {
    /// An admin key may do everything a verifier key may.
    public var roles: Set<APIKeyRole> {
        switch role {
        case .admin: Self.adminRoles
        case .verifier: Self.verifierRoles
        }
    }

    // Made once: the role check runs on every authenticated request.
    private static let adminRoles: Set<APIKeyRole> = [.admin, .verifier]
    private static let verifierRoles: Set<APIKeyRole> = [.verifier]
}
