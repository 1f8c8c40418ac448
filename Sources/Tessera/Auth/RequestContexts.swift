import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The context of every request: the peer's address and the client's.
public struct TesseraRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The socket peer, when known.
    public let remoteAddress: SocketAddress?
    /// The client's address: the peer, or what a trusted proxy forwarded (set by ``ClientAddressMiddleware``).
    public var clientAddress: String
    /// Responses are JSON with sorted keys and ISO 8601 dates.
    public var responseEncoder: JSONEncoder { .api }

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.clientAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }
}

/// The context of admin routes: only ``Admission`` creates one, for an admin caller.
public struct AdminRequestContext: RequestContext {
    /// Who may use admin routes.
    public static let roles: [APIKeyRole] = [.admin]
    public var coreContext: CoreRequestContextStorage
    /// The authenticated admin.
    public let caller: Caller
    /// Responses are JSON with sorted keys and ISO 8601 dates.
    public var responseEncoder: JSONEncoder { .api }

    /// Made only from what ``Admission`` admitted.
    public typealias Source = AdmittedRequest

    public init(source: AdmittedRequest) {
        self.caller = source.caller
        self.coreContext = source.context.coreContext
    }
}

/// The context of verification routes: any caller with the admin or verifier role.
public struct VerifierRequestContext: RequestContext {
    /// Who may use verification routes.
    public static let roles: [APIKeyRole] = [.admin, .verifier]
    public var coreContext: CoreRequestContextStorage
    /// The authenticated caller.
    public let caller: Caller
    /// Responses are JSON with sorted keys and ISO 8601 dates.
    public var responseEncoder: JSONEncoder { .api }

    /// Made only from what ``Admission`` admitted.
    public typealias Source = AdmittedRequest

    public init(source: AdmittedRequest) {
        self.caller = source.caller
        self.coreContext = source.context.coreContext
    }
}

extension TesseraRequestContext {
    /// Throws `403` when `caller`'s role is not in `roles`.
    func require(_ caller: Caller, hasRoleIn roles: [APIKeyRole]) throws {
        guard roles.contains(caller.role) else {
            logger.notice("caller forbidden", metadata: ["caller": "\(caller.name)", "role": "\(caller.role.rawValue)"])
            throw APIError.forbidden(role: caller.role)
        }
    }
}

/// Authenticates the API key in `X-API-Key` or `Authorization: Bearer`.
///
/// A missing or wrong key spends one of the client address's failure budget and is a `401`; a client whose
/// budget is spent gets `429` before its key is even hashed.
struct APIKeyAuthenticator: Sendable {
    let keys: APIKeyRing
    let failures: any RateLimitStore
    let metrics: ServiceMetrics
    /// Whether `Authorization` may carry the key; off where that header carries something else (forward auth).
    var readsAuthorizationHeader = true

    /// The caller presenting a valid key, or a thrown `401` (or `429` once the client's failure budget is spent).
    func authenticate(request: Request, context: TesseraRequestContext) async throws -> Caller {
        let client = ClientAddressResolver.limiterKey(for: context.clientAddress)
        let standing = try await failures.check(client, logger: context.logger)
        guard standing.allowed else {
            context.logger.notice("authentication refused: too many failures", metadata: ["client": "\(context.clientAddress)"])
            metrics.recordRateLimited(policy: failures.policy.name)
            throw APIError.tooManyRequests(standing, policy: failures.policy)
        }
        let presented = Self.credentials(in: request, readingAuthorization: readsAuthorizationHeader)
        guard case .key(let key, let name) = presented, let caller = keys.caller(presenting: key), name == nil || name == caller.name else {
            let decision = try await failures.acquire(client, logger: context.logger)
            context.logger.notice("authentication failed", metadata: ["client": "\(context.clientAddress)", "reason": "\(presented)"])
            guard decision.allowed else {
                metrics.recordRateLimited(policy: failures.policy.name)
                throw APIError.tooManyRequests(decision, policy: failures.policy)
            }
            throw APIError.unauthenticated(presented)
        }
        context.logger.info("authenticated", metadata: ["caller": .string(caller.name), "client": .string(context.clientAddress)])
        return caller
    }

    /// What a request presents as its API key.
    enum Credentials: CustomStringConvertible {
        /// No `X-API-Key`, no `Authorization`, or an empty one.
        case none
        /// An `Authorization` header that is not `Bearer <token68>`: refused even beside a valid `X-API-Key`,
        /// since a request with credentials that cannot be read is not one to guess about.
        case malformed
        /// The presented key, and the key name when it came as HTTP Basic `name:key` (as OAuth clients send
        /// `client_id:client_secret`), which must then match.
        case key(String, name: String?)

        /// For log lines: never the key itself.
        var description: String {
            switch self {
            case .none: "no key"
            case .malformed: "malformed Authorization header"
            case .key(_, let name): name == nil ? "unknown key" : "unknown key or name"
            }
        }
    }

    /// The key from `X-API-Key`, else from `Authorization` (`Bearer <key>`, or `Basic` of `name:key`).
    ///
    /// `X-API-Key` wins so that a proxy can authenticate with it while `Authorization` carries something else.
    static func credentials(in request: Request, readingAuthorization: Bool = true) -> Credentials {
        var fromAuthorization: Credentials = .none
        if readingAuthorization, let authorization = request.headers.value(of: .authorization) {
            if let token = bearerToken(authorization) {
                fromAuthorization = .key(String(token), name: nil)
            } else if let (name, secret) = basicCredentials(authorization) {
                fromAuthorization = .key(secret, name: name)
            } else {
                return .malformed
            }
        }
        if let header = request.headers.value(of: .apiKey) {
            let key = header.trimmingWhitespace()
            return key.isEmpty ? .none : .key(String(key), name: nil)
        }
        if case .key(let key, _) = fromAuthorization, key.isEmpty { return .none }
        return fromAuthorization
    }

    /// The name and key of `Basic base64(name:key)` (RFC 7617), or `nil`.
    static func basicCredentials(_ authorization: String) -> (String, String)? {
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let data = Data(base64Encoded: String(parts[1].trimmingWhitespace())),
            let decoded = String(data: data, encoding: .utf8),
            let colon = decoded.firstIndex(of: ":")
        else { return nil }
        return (String(decoded[..<colon]), String(decoded[decoded.index(after: colon)...]))
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

extension JSONEncoder {
    /// The encoder of every JSON response body: sorted keys, ISO 8601 dates. One shared instance (encoding is
    /// thread-safe), not one per response.
    static let api: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()
}
