import Foundation
import Hummingbird
import HummingbirdAuth
import NIOCore

/// The context of every request: the peer's address, the client's, and the caller once its API key is accepted.
public struct TesseraRequestContext: AuthRequestContext, RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The socket peer, when known.
    public let remoteAddress: SocketAddress?
    /// The client's address: the peer, or what a trusted proxy forwarded (set by ``ClientAddressMiddleware``).
    public var clientAddress: String
    /// The client's address when a trusted proxy forwarded it: the end client behind that proxy.
    public var forwardedClientAddress: String?
    /// The caller whose API key ``APIKeyAuthenticator`` accepted.
    public var identity: Caller?
    /// The caller's budget, when a route spends it only once the request proves worth the work (verification).
    public var budgetCharge: BudgetCharge?
    /// Responses are JSON with sorted keys and ISO 8601 dates.
    public var responseEncoder: JSONEncoder { .api }

    public init(source: ApplicationRequestContextSource) {
        let remoteAddress = source.channel.remoteAddress
        self.coreContext = .init(source: source)
        self.remoteAddress = remoteAddress
        self.clientAddress = remoteAddress?.ipAddress ?? "unknown"
    }
}

/// The context of an authenticated route: its caller is known, so handlers need not unwrap one.
public struct CallerRequestContext: ChildRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated caller.
    public let caller: Caller
    /// The caller's budget, when the route spends it itself (see ``TesseraRequestContext/budgetCharge``).
    public let budgetCharge: BudgetCharge?
    /// The end client's address when a trusted proxy forwarded it.
    public let forwardedClientAddress: String?
    /// Responses are JSON with sorted keys and ISO 8601 dates.
    public var responseEncoder: JSONEncoder { .api }

    public init(context: TesseraRequestContext) throws {
        self.coreContext = context.coreContext
        self.caller = try context.requireIdentity()
        self.budgetCharge = context.budgetCharge
        self.forwardedClientAddress = context.forwardedClientAddress
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
