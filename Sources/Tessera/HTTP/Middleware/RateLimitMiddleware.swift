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

extension RateLimitDecision {
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers), plus `Retry-After` when refused.
    func headerFields(policy: RateLimitPolicy) -> HTTPFields {
        var fields = HTTPFields()
        addHeaderFields(to: &fields, policy: policy)
        return fields
    }

    /// Appends the fields of ``headerFields(policy:)`` to `fields`.
    func addHeaderFields(to fields: inout HTTPFields, policy: RateLimitPolicy) {
        fields.append(HTTPField(name: .rateLimitPolicy, value: policy.headerValue))
        fields.append(remainingField(policy: policy))
        if !allowed { fields.append(HTTPField(name: .retryAfter, value: String(retryAfterSeconds))) }
    }

    /// `RateLimit`: what is left of the budget and when it is whole again.
    func remainingField(policy: RateLimitPolicy) -> HTTPField {
        var value = "\""
        value.reserveCapacity(policy.name.utf8.count + 32)
        value += policy.name
        value += "\";r="
        value += String(remaining)
        value += ";t="
        value += String(resetSeconds)
        return HTTPField(name: .rateLimit, value: value)
    }
}

extension APIError {
    /// `429` with `Retry-After` and the rate limit fields.
    static func tooManyRequests(_ decision: RateLimitDecision, policy: RateLimitPolicy) -> APIError {
        APIError(
            .tooManyRequests,
            type: "urn:tessera:problem:rate-limited",
            detail: "Too many requests; retry after \(decision.retryAfterSeconds) seconds.",
            headers: decision.headerFields(policy: policy)
        )
    }
}

extension HTTPField.Name {
    static let rateLimitPolicy = Self("RateLimit-Policy")!
    static let rateLimit = Self("RateLimit")!
}
