import Foundation
import Hummingbird

/// `POST /api/tokens/verify`: whether a presented token may be used, for downstream services.
struct VerificationController {
    let service: TokenService
    /// The largest request body read, in bytes (`MAX_BODY_BYTES`).
    let maximumBodySize: Int

    var endpoints: RouteCollection<VerifierRequestContext> {
        RouteCollection(context: VerifierRequestContext.self)
            .post(use: verify)
    }

    /// Always `200` for an authorised caller: the answer is in the body, never in the status.
    @Sendable func verify(_ request: Request, context: VerifierRequestContext) async throws -> VerificationResult {
        var request = request
        var reader = FieldReader(try await request.jsonObject(context: context, maximumSize: maximumBodySize), allowed: ["token", "requiredScopes"])
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
        var verification: Verification

        init(_ verification: Verification) {
            self.verification = verification
        }

        enum Key: String, CodingKey {
            case active, code, tokenId, userId, scopes, expiresAt, createdAt
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            switch verification {
            case .active(let record):
                try container.encode(true, forKey: .active)
                try container.encode(record.id.lowercasedString, forKey: .tokenId)
                try container.encode(record.userID, forKey: .userId)
                try container.encode(record.scopes, forKey: .scopes)
                try container.encode(record.expiresAt, forKey: .expiresAt)
                try container.encode(record.createdAt, forKey: .createdAt)
            case .inactive(let reason):
                try container.encode(false, forKey: .active)
                try container.encode(reason, forKey: .code)
            }
        }
    }
}
