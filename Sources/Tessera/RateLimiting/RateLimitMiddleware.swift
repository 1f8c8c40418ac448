import HTTPTypes
import Hummingbird
import HummingbirdAuth

/// Spends one request of the authenticated caller's budget (`429` when spent) and reports the budget in
/// `RateLimit-Policy` and `RateLimit` on every answer, errors included.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = TesseraRequestContext
    let budget: any RateLimitStore
    let metrics: ServiceMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let caller = try context.requireIdentity()
        let decision = try await budget.acquire(caller.name, logger: context.logger)
        guard decision.allowed else {
            context.logger.notice("rate limited", metadata: ["caller": "\(caller.name)", "policy": "\(budget.policy.name)"])
            metrics.recordRateLimited(policy: budget.policy.name)
            throw APIError.tooManyRequests(decision, policy: budget.policy)
        }
        do {
            var response = try await next(request, context)
            decision.addHeaderFields(to: &response.headers, policy: budget.policy)
            return response
        } catch var error as APIError {
            decision.addHeaderFields(to: &error.headers, policy: budget.policy)
            throw error
        }
    }
}
