import HTTPTypes
import Hummingbird
import HummingbirdAuth
import Logging

/// Spends one request of a budget (`429` when spent) and reports it in `RateLimit-Policy` and `RateLimit` on
/// every answer, errors included.
///
/// Whose budget and when: the caller's at once (``Spending/callerAtOnce``); the caller's only when the handler
/// asks, through the context's ``BudgetCharge`` (``Spending/callerWhenAsked``: verification, so a malformed token
/// costs nothing); or the end client's at once, when a trusted proxy forwarded its address
/// (``Spending/forwardedClient``: forward auth and introspection).
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = TesseraRequestContext

    /// Whose budget is spent, and when.
    enum Spending {
        case callerAtOnce
        case callerWhenAsked
        case forwardedClient
    }

    let budget: any RateLimitStore
    let spending: Spending
    let metrics: ServiceMetrics

    init(budget: any RateLimitStore, spending: Spending = .callerAtOnce, metrics: ServiceMetrics) {
        self.budget = budget
        self.spending = spending
        self.metrics = metrics
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch spending {
        case .callerAtOnce:
            let key = try context.requireIdentity().name
            return try await respond(after: try await spend(key, context: context), request, context, next)
        case .forwardedClient:
            guard let address = context.forwardedClientAddress else { return try await next(request, context) }
            return try await respond(after: try await spend(ClientAddressResolver.limiterKey(for: address), context: context), request, context, next)
        case .callerWhenAsked:
            let charge = BudgetCharge(store: budget, key: try context.requireIdentity().name)
            var context = context
            context.budgetCharge = charge
            do {
                var response = try await next(request, context)
                addHeaderFields(of: charge, to: &response.headers)
                return response
            } catch let refusal as BudgetExceeded {
                throw refused(refusal.decision, key: charge.key, context: context)
            } catch var error as APIError {
                addHeaderFields(of: charge, to: &error.headers)
                throw error
            }
        }
    }

    /// Spends one request of `key`'s budget, throwing `429` when none is left.
    private func spend(_ key: String, context: Context) async throws -> RateLimitDecision {
        let decision = try await budget.acquire(key, logger: context.logger)
        guard decision.allowed else { throw refused(decision, key: key, context: context) }
        return decision
    }

    /// Runs the rest of the chain, adding `decision`'s fields to its answer.
    private func respond(after decision: RateLimitDecision, _ request: Request, _ context: Context, _ next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            var response = try await next(request, context)
            decision.addHeaderFields(to: &response.headers, policy: budget.policy)
            return response
        } catch var error as APIError {
            decision.addHeaderFields(to: &error.headers, policy: budget.policy)
            throw error
        }
    }

    /// The `429` for a refused request, logged and counted.
    private func refused(_ decision: RateLimitDecision, key: String, context: Context) -> APIError {
        let subject: Logger.MetadataValue = spending == .forwardedClient ? "client \(context.forwardedClientAddress ?? key)" : "caller \(key)"
        context.logger.notice("rate limited", metadata: ["subject": subject, "policy": "\(budget.policy.name)"])
        metrics.recordRateLimited(policy: budget.policy.name)
        return APIError.tooManyRequests(decision, policy: budget.policy)
    }

    /// The charge's fields once it was spent; before that only `RateLimit-Policy`, as nothing was spent.
    private func addHeaderFields(of charge: BudgetCharge, to fields: inout HTTPFields) {
        if let decision = charge.decision {
            decision.addHeaderFields(to: &fields, policy: budget.policy)
        } else {
            fields.append(HTTPField(name: .rateLimitPolicy, value: budget.policy.headerValue))
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
