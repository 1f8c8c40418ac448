import Foundation
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

    private static let fields: Set<String> = ["token", "requiredScopes"]

    /// Always `200` for an authorised caller: the answer is in the body, never in the status.
    @Sendable func verify(_ request: Request, context: CallerRequestContext) async throws -> VerificationResult {
        var reader = FieldReader(try await request.jsonObject(context: context, maximumSize: maximumBodySize), allowed: Self.fields)
        let token = reader.string("token", required: true)
        let requiredScopes = TextRules.scopes(reader.strings("requiredScopes"), field: "requiredScopes", into: &reader)
        guard reader.errors.isEmpty, let token else { throw APIError.validation(reader.errors) }
        let verification = try await service.verify(token, requiredScopes: requiredScopes ?? [], logger: context.logger)
        if case .inactive(let reason) = verification {
            context.logger.info("token inactive", metadata: ["code": "\(reason.rawValue)", "caller": "\(context.caller.name)"])
        }
        return VerificationResult(verification)
    }
}

extension VerificationController {
    /// `{active: true, tokenId, userId, scopes, expiresAt, createdAt}` or `{active: false, code}`.
    struct VerificationResult: ResponseEncodable, Equatable {
        var active: Bool
        var code: InactiveReason?
        var tokenId: String?
        var userId: String?
        var scopes: [String]?
        var createdAt: Date?
        var expiresAt: Date?

        init(_ verification: Verification) {
            switch verification {
            case .active(let record):
                active = true
                tokenId = record.id.lowercasedString
                userId = record.userID
                scopes = record.scopes
                createdAt = record.createdAt
                expiresAt = record.expiresAt
            case .inactive(let reason):
                active = false
                code = reason
            }
        }
    }
}
