import Foundation
import Hummingbird

/// `GET /api/audit`: the audit trail of token changes, newest first, for admins.
struct AuditController {
    let service: TokenService

    var endpoints: RouteCollection<CallerRequestContext> {
        RouteCollection(context: CallerRequestContext.self)
            .get(use: list)
    }

    /// `GET /api/audit?tokenId=&userId=&limit=&cursor=`.
    @Sendable func list(_ request: Request, context: CallerRequestContext) async throws -> AuditList {
        var reader = QueryReader(request.uri.queryParameters, allowed: ["tokenId", "userId", "limit", "cursor"])
        let query = AuditQuery(
            tokenID: reader.decoded("tokenId", message: "must be a token id (a UUID)", UUID.init(uuidString:)),
            userID: reader.userID(required: false),
            limit: reader.limit(default: TokenController.defaultPageSize, maximum: TokenController.maximumPageSize),
            before: reader.decoded("cursor", message: "is not a nextCursor value from an earlier page") { text in
                text.utf8.count <= 18 && text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
                    ? Int64(text).flatMap { $0 > 0 ? $0 : nil } : nil
            }
        )
        guard reader.errors.isEmpty else { throw APIError.validation(reader.errors) }
        let page = try await service.auditEvents(query, logger: context.logger)
        return AuditList(events: page.events.map(AuditList.Event.init), nextCursor: page.nextCursor.map(String.init))
    }
}

extension AuditController {
    /// `{events: [...], nextCursor}`.
    struct AuditList: ResponseEncodable {
        struct Event: Encodable {
            var id: Int64
            var occurredAt: Date
            var actor: String
            var action: String
            @EncodesNull var tokenId: String?
            @EncodesNull var userId: String?
            var details: [String: String]

            init(_ event: AuditEvent) {
                id = event.id
                occurredAt = event.occurredAt
                actor = event.actor
                action = event.action
                tokenId = event.tokenID?.lowercasedString
                userId = event.userID
                details = event.details
            }
        }

        var events: [Event]
        @EncodesNull var nextCursor: String?
    }
}
