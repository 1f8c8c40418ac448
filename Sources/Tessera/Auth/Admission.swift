import HTTPTypes
import Hummingbird
import Logging

/// A request context whose caller is known: the contexts of authenticated routes.
protocol CallerRequestContext: RequestContext where Source == AdmittedRequest {
    /// The roles whose keys may use routes with this context.
    static var roles: [APIKeyRole] { get }
    /// The authenticated caller.
    var caller: Caller { get }
}

extension AdminRequestContext: CallerRequestContext {}
extension VerifierRequestContext: CallerRequestContext {}

/// What the context of an authenticated route is made from: the request's context and the caller admitted.
///
/// Only ``Admission`` creates one, after checking the caller's role, so a route's context cannot exist without it.
public struct AdmittedRequest: RequestContextSource {
    /// The caller ``Admission`` admitted.
    public let caller: Caller
    /// The context the request arrived with.
    public let context: TesseraRequestContext
    /// The request's logger.
    public var logger: Logger { context.logger }

    fileprivate init(caller: Caller, context: TesseraRequestContext) {
        self.caller = caller
        self.context = context
    }
}

/// Admits a request to an authenticated route: authenticates its API key (``APIKeyAuthenticator``), checks the
/// caller's role (`403`), then spends one request of the caller's budget (`429` when spent) and reports the budget
/// in `RateLimit-Policy` and `RateLimit`. A forbidden caller spends no budget.
struct Admission: Sendable {
    let authenticator: APIKeyAuthenticator
    let budget: any RateLimitStore
    let metrics: ServiceMetrics
    /// `RateLimit-Policy`, the same on every response.
    private let policyField: HTTPField

    init(authenticator: APIKeyAuthenticator, budget: any RateLimitStore, metrics: ServiceMetrics) {
        self.authenticator = authenticator
        self.budget = budget
        self.metrics = metrics
        self.policyField = HTTPField(name: .rateLimitPolicy, value: budget.policy.headerValue)
    }

    /// Answers `request` with `responder` in the context of its admitted caller.
    func respond<Responder: HTTPResponder>(
        to request: Request, context: TesseraRequestContext, with responder: Responder
    ) async throws -> Response where Responder.Context: CallerRequestContext {
        let caller = try await authenticator.authenticate(request: request, context: context)
        try context.require(caller, hasRoleIn: Responder.Context.roles)
        let decision = try await budget.acquire(caller.name, logger: context.logger)
        guard decision.allowed else {
            context.logger.notice("rate limited", metadata: ["caller": "\(caller.name)", "policy": "\(budget.policy.name)"])
            metrics.recordRateLimited(policy: budget.policy.name)
            throw APIError.tooManyRequests(decision, policy: budget.policy)
        }
        do {
            let admitted = AdmittedRequest(caller: caller, context: context)
            var response = try await responder.respond(to: request, context: Responder.Context(source: admitted))
            response.headers.append(policyField)
            response.headers.append(decision.remainingField(policy: budget.policy))
            return response
        } catch var error as APIError {
            decision.addHeaderFields(to: &error.headers, policy: budget.policy)
            throw error
        }
    }
}

/// Routes that answer only admitted callers, in `Context`: what a route collection added here is mounted on the
/// parent router behind an ``Admission``.
///
/// One responder admits the request and creates the route's context, where a middleware group and a context
/// transform would add two layers to every verification.
struct AdmittedRoutes<Context: CallerRequestContext, Parent: RouterMethods<TesseraRequestContext>>: RouterMethods {
    let parent: Parent
    let admission: Admission

    /// Runs a route's responder once its request is admitted.
    struct AdmittingResponder<Responder: HTTPResponder>: HTTPResponder where Responder.Context == Context {
        let admission: Admission
        let responder: Responder

        func respond(to request: Request, context: TesseraRequestContext) async throws -> Response {
            try await admission.respond(to: request, context: context, with: responder)
        }
    }

    @discardableResult func on<Responder: HTTPResponder>(
        _ path: RouterPath, method: HTTPRequest.Method, responder: Responder
    ) -> Self where Responder.Context == Context {
        parent.on(path, method: method, responder: AdmittingResponder(admission: admission, responder: responder))
        return self
    }

    /// Not supported: route collections carry their own middleware.
    @discardableResult func add(middleware: any MiddlewareProtocol<Request, Response, Context>) -> Self {
        preconditionFailure("add middleware to the route collection mounted here")
    }
}
