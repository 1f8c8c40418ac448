import HTTPTypes
import Hummingbird

/// A request context whose caller is known: the child contexts of authenticated routes.
protocol CallerRequestContext: ChildRequestContext where ParentContext == TesseraRequestContext {
    /// The roles whose keys may use routes with this context.
    static var roles: [APIKeyRole] { get }
    /// The authenticated caller.
    var caller: Caller { get }
}

extension AdminRequestContext: CallerRequestContext {}
extension VerifierRequestContext: CallerRequestContext {}

/// Admits a request to an authenticated route group, in one middleware because it runs on every verification:
/// authenticates its API key (``APIKeyAuthenticator``), checks the caller's role (`403`), then spends one request
/// of the caller's budget (`429` when spent) and reports the budget in `RateLimit-Policy` and `RateLimit`.
struct AdmissionMiddleware: RouterMiddleware {
    typealias Context = TesseraRequestContext
    let authenticator: APIKeyAuthenticator
    /// The roles the group's child context accepts (checked here too, so a forbidden call spends no budget).
    let roles: [APIKeyRole]
    let budget: any RateLimitStore
    let metrics: ServiceMetrics
    /// `RateLimit-Policy`, the same on every response.
    private let policyField: HTTPField

    init(authenticator: APIKeyAuthenticator, roles: [APIKeyRole], budget: any RateLimitStore, metrics: ServiceMetrics) {
        self.authenticator = authenticator
        self.roles = roles
        self.budget = budget
        self.metrics = metrics
        self.policyField = HTTPField(name: .rateLimitPolicy, value: budget.policy.headerValue)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.identity = try await authenticator.authenticate(request: request, context: context)
        let caller = try context.requireCaller(withRole: roles)
        let decision = try await budget.acquire(caller.name, logger: context.logger)
        guard decision.allowed else {
            context.logger.notice("rate limited", metadata: ["caller": "\(caller.name)", "policy": "\(budget.policy.name)"])
            metrics.recordRateLimited(policy: budget.policy.name)
            throw APIError.tooManyRequests(decision, policy: budget.policy)
        }
        do {
            var response = try await next(request, context)
            response.headers.append(policyField)
            response.headers.append(decision.remainingField(policy: budget.policy))
            return response
        } catch var error as APIError {
            decision.addHeaderFields(to: &error.headers, policy: budget.policy)
            throw error
        }
    }
}
