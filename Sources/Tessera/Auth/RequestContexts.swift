import HTTPTypes
import Hummingbird
import HummingbirdAuth
import NIOCore
import Foundation

/// The context of every request: the peer's address and, once ``APIKeyAuthenticator`` has run, the caller.
public struct TesseraRequestContext: AuthRequestContext, RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The caller, set by ``APIKeyAuthenticator`` when a valid key was presented.
    public var identity: Caller?
    /// The socket peer, when known.
    public let remoteAddress: SocketAddress?
    /// The client's address: the peer, or what a trusted proxy forwarded (set by ``ClientAddressMiddleware``).
    public var clientAddress: String
    /// Responses are JSON with sorted keys and ISO 8601 dates.
    public var responseEncoder: JSONEncoder { .api }

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.remoteAddress = source.channel.remoteAddress
        self.clientAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }
}

/// The context of admin routes: it cannot be created without an admin caller.
public struct AdminRequestContext: ChildRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated admin.
    public let caller: Caller
    /// Responses are JSON with sorted keys and ISO 8601 dates.
    public var responseEncoder: JSONEncoder { .api }

    public init(context: TesseraRequestContext) throws {
        self.caller = try context.requireCaller(withRole: [.admin])
        self.coreContext = context.coreContext
    }
}

/// The context of verification routes: any caller with the admin or verifier role.
public struct VerifierRequestContext: ChildRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated caller.
    public let caller: Caller
    /// Responses are JSON with sorted keys and ISO 8601 dates.
    public var responseEncoder: JSONEncoder { .api }

    public init(context: TesseraRequestContext) throws {
        self.caller = try context.requireCaller(withRole: [.admin, .verifier])
        self.coreContext = context.coreContext
    }
}

extension TesseraRequestContext {
    /// The caller, throwing `401` when there is none and `403` when its role is not in `roles`.
    func requireCaller(withRole roles: Set<APIKeyRole>) throws -> Caller {
        // The authenticator runs first on every route using these contexts; no caller here means no key was sent.
        guard let caller = identity else { throw APIError.unauthenticated(keyPresented: false) }
        guard roles.contains(caller.role) else {
            logger.notice("caller forbidden", metadata: ["caller": "\(caller.name)", "role": "\(caller.role.rawValue)"])
            throw APIError.forbidden(role: caller.role)
        }
        return caller
    }
}

/// Authenticates the API key in `X-API-Key` or `Authorization: Bearer`.
///
/// A missing or wrong key spends one of the client address's failure budget and is a `401`; a client whose
/// budget is spent gets `429` before its key is even hashed.
struct APIKeyAuthenticator: AuthenticatorMiddleware {
    typealias Context = TesseraRequestContext
    let keys: APIKeyRing
    let failures: GCRALimiter

    func authenticate(request: Request, context: Context) async throws -> Caller? {
        let client = ClientAddressResolver.limiterKey(for: context.clientAddress)
        let standing = failures.check(client)
        guard standing.allowed else {
            context.logger.notice("authentication refused: too many failures", metadata: ["client": "\(context.clientAddress)"])
            throw APIError.tooManyRequests(standing, policy: failures.policy)
        }
        let presented = Self.presentedKey(in: request)
        guard let presented, let caller = keys.caller(presenting: presented) else {
            let decision = failures.acquire(client)
            context.logger.notice(
                "authentication failed",
                metadata: ["client": "\(context.clientAddress)", "reason": "\(presented == nil ? "no key" : "unknown key")"]
            )
            guard decision.allowed else { throw APIError.tooManyRequests(decision, policy: failures.policy) }
            throw APIError.unauthenticated(keyPresented: presented != nil)
        }
        context.logger.info("authenticated", metadata: ["caller": "\(caller.name)", "client": "\(context.clientAddress)"])
        return caller
    }

    /// The key from `X-API-Key`, else from `Authorization: Bearer`; an empty value counts as no key.
    ///
    /// `X-API-Key` wins so that a proxy can authenticate with it while `Authorization` carries something else.
    static func presentedKey(in request: Request) -> String? {
        let key: Substring?
        if let header = request.headers[.apiKey] {
            key = header.trimmingWhitespace()
        } else if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            key = parts.count == 2 && parts[0].lowercased() == "bearer" ? parts[1].trimmingWhitespace() : nil
        } else {
            key = nil
        }
        guard let key, !key.isEmpty else { return nil }
        return String(key)
    }
}

extension JSONEncoder {
    /// The encoder of every JSON response body: sorted keys, ISO 8601 dates.
    static var api: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}
