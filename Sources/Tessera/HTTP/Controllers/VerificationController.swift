import Foundation
import HTTPTypes
import Hummingbird

/// `POST /api/tokens/verify`: whether a presented token may be used, for downstream services.
struct VerificationController {
    let service: TokenService
    /// The largest request body read, in bytes (`MAX_BODY_BYTES`).
    let maximumBodySize: Int

    var endpoints: RouteCollection<CallerRequestContext> {
        RouteCollection(context: CallerRequestContext.self)
            .post(use: verify)
    }

    private static let fields: Set<String> = ["token", "requiredScopes", "clientIp"]

    /// Always `200` for an authorised caller: the answer is in the body, never in the status.
    @Sendable func verify(_ request: Request, context: CallerRequestContext) async throws -> VerificationResult {
        var reader = FieldReader(try await request.jsonObject(context: context, maximumSize: maximumBodySize), allowed: Self.fields)
        let token = reader.string("token", required: true)
        let requiredScopes = TextRules.scopes(reader.strings("requiredScopes"), field: "requiredScopes", into: &reader)
        let clientIP = reader.string("clientIp", required: false)
        if let clientIP, clientIP.contains("/") || IPNetwork(cidr: clientIP) == nil {
            reader.fail("clientIp", "must be an IPv4 or IPv6 address")
        }
        guard reader.errors.isEmpty, let token else { throw APIError.validation(reader.errors) }
        let verification = try await service.verify(
            token, requiredScopes: requiredScopes ?? [], by: Verifier(name: context.caller.name, clientAddress: clientIP),
            spending: context.budgetCharge, logger: context.logger)
        if case .active = verification {} else {
            context.logger.info("token inactive", metadata: ["code": "\(verification.code)", "caller": "\(context.caller.name)"])
        }
        return VerificationResult(verification)
    }
}

extension VerificationController {
    /// `{active: true, tokenId, userId, scopes, expiresAt, createdAt, meta?, rateLimit?, remaining?}` or
    /// `{active: false, code, rateLimit?}`, keys sorted; a token with a rate limit of its own also reports it in
    /// `RateLimit-Policy` and `RateLimit`.
    struct VerificationResult: ResponseGenerator, Equatable {
        var verification: Verification

        init(_ verification: Verification) {
            self.verification = verification
        }

        /// The body, written by hand: this is the hot path.
        var body: ByteBuffer {
            var buffer: ByteBuffer
            switch verification {
            case .active(let record):
                buffer = Self.allocator.buffer(
                    capacity: 160 + record.userID.utf8.count + record.scopes.reduce(0) { $0 + $1.utf8.count + 3 } + (record.policy.meta?.utf8.count ?? 0))
                buffer.writeStaticString(#"{"active":true,"createdAt":"#)
                JSONText.write(record.createdAt, to: &buffer)
                buffer.writeStaticString(#","expiresAt":"#)
                JSONText.write(record.expiresAt, to: &buffer)
                if let meta = record.policy.meta {
                    buffer.writeStaticString(#","meta":"#)
                    buffer.writeString(meta)
                }
                if let limit = record.policy.rateLimit, let decision = record.rateLimitDecision {
                    buffer.writeStaticString(#","rateLimit":"#)
                    Self.write(decision, of: limit, to: &buffer)
                }
                if record.policy.maxUses != nil {
                    buffer.writeStaticString(#","remaining":"#)
                    buffer.writeString(String(record.usesLeft ?? 0))
                }
                buffer.writeStaticString(#","scopes":"#)
                JSONText.write(record.scopes, to: &buffer)
                buffer.writeStaticString(#","tokenId":"#)
                JSONText.write(record.id, to: &buffer)
                buffer.writeStaticString(#","userId":"#)
                JSONText.write(record.userID, to: &buffer)
                buffer.writeStaticString("}")
            case .inactive(let reason):
                buffer = Self.allocator.buffer(capacity: 48)
                buffer.writeStaticString(#"{"active":false,"code":""#)
                buffer.writeString(reason.rawValue)
                buffer.writeStaticString(#""}"#)
            case .rateLimited(let limit, let decision):
                buffer = Self.allocator.buffer(capacity: 128)
                buffer.writeStaticString(#"{"active":false,"code":"RATE_LIMITED","rateLimit":"#)
                Self.write(decision, of: limit, to: &buffer)
                buffer.writeStaticString("}")
            }
            return buffer
        }

        /// `{"limit", "remaining", "reset", "retryAfter"?}`: the token's own budget, as `RateLimit` reports it.
        private static func write(_ decision: RateLimitDecision, of limit: RateLimitPolicy, to buffer: inout ByteBuffer) {
            buffer.writeString(#"{"limit":\#(limit.quota),"remaining":\#(decision.remaining),"reset":\#(decision.resetSeconds)"#)
            if !decision.allowed { buffer.writeString(#","retryAfter":\#(decision.retryAfterSeconds)"#) }
            buffer.writeStaticString("}")
        }

        /// The token's own rate limit, when it has one: the policy and what this verification left of it.
        private var tokenRateLimit: (RateLimitPolicy, RateLimitDecision)? {
            switch verification {
            case .active(let record): record.policy.rateLimit.flatMap { limit in record.rateLimitDecision.map { (limit, $0) } }
            case .rateLimited(let limit, let decision): (limit, decision)
            case .inactive: nil
            }
        }

        private static let allocator = ByteBufferAllocator()

        /// The body as text.
        var json: String { String(buffer: body) }

        func response(from request: Request, context: some RequestContext) -> Response {
            var response = JSONText.response(body)
            if let (limit, decision) = tokenRateLimit {
                response.headers.append(HTTPField(name: .rateLimitPolicy, value: limit.headerValue))
                response.headers.append(decision.remainingField(policy: limit))
            }
            return response
        }
    }
}
