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
    /// `{active: true, tokenId, userId, scopes, expiresAt, createdAt}` or `{active: false, code}`, keys sorted.
    struct VerificationResult: ResponseGenerator, Equatable {
        var verification: Verification

        init(_ verification: Verification) {
            self.verification = verification
        }

        /// The body, written by hand: this is the hot path.
        var json: String {
            switch verification {
            case .active(let record):
                return #"{"active":true,"createdAt":"# + JSONText.date(record.createdAt) + #","expiresAt":"# + JSONText.date(record.expiresAt)
                    + #","scopes":"# + JSONText.array(record.scopes) + #","tokenId":""# + record.id.lowercasedString + #"","userId":"#
                    + JSONText.string(record.userID) + "}"
            case .inactive(let reason):
                return #"{"active":false,"code":""# + reason.rawValue + #""}"#
            }
        }

        func response(from request: Request, context: some RequestContext) -> Response {
            let body = ByteBuffer(string: json)
            return Response(
                status: .ok,
                headers: [.contentType: "application/json; charset=utf-8", .contentLength: "\(body.readableBytes)"],
                body: .init(byteBuffer: body)
            )
        }
    }
}
