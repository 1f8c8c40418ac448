import Foundation
import Hummingbird
import NIOCore

/// `POST /oauth2/introspect`: RFC 7662 token introspection, so OAuth-aware gateways can ask Tessera.
struct IntrospectionController {
    let service: TokenService
    /// The largest request body read, in bytes (`MAX_BODY_BYTES`).
    let maximumBodySize: Int

    var endpoints: RouteCollection<CallerRequestContext> {
        RouteCollection(context: CallerRequestContext.self)
            .post(use: introspect)
    }

    /// Reads `token` (and ignores `token_type_hint`) from a form body; answers the token's claims or `{"active": false}`.
    @Sendable func introspect(_ request: Request, context: CallerRequestContext) async throws -> Introspection {
        guard let contentType = request.headers[.contentType].flatMap(MediaType.init(from:)),
            contentType.isType(.applicationUrlEncoded)
        else {
            throw APIError(.unsupportedMediaType, type: "urn:tessera:problem:unsupported-media-type",
                detail: "Send the body as Content-Type: application/x-www-form-urlencoded.")
        }
        let body = try await request.body.collect(upTo: maximumBodySize)
        let form = Self.parseForm(String(buffer: body))
        var errors: [FieldError] = []
        for (name, values) in form {
            if !["token", "token_type_hint"].contains(name) {
                errors.append(FieldError(field: name, message: "is not a known parameter; allowed are token, token_type_hint"))
            } else if values.count > 1 {
                errors.append(FieldError(field: name, message: "may be given once"))
            }
        }
        guard let token = form["token"]?.first, !token.isEmpty else {
            throw APIError.validation(errors + [FieldError(field: "token", message: "is required")])
        }
        guard errors.isEmpty else { throw APIError.validation(errors) }
        guard case .active(let record) = try await service.verify(
            token, by: Verifier(name: context.caller.name, clientAddress: context.forwardedClientAddress), spending: context.budgetCharge,
            logger: context.logger) else {
            return Introspection(active: false)
        }
        return Introspection(
            active: true,
            scope: record.scopes.joined(separator: " "),
            sub: record.userID,
            exp: Int(record.expiresAt.timeIntervalSince1970),
            iat: Int(record.createdAt.timeIntervalSince1970),
            tokenType: "Bearer",
            clientID: record.createdBy,
            meta: record.policy.meta.flatMap { try? JSONParser.parse(ByteBuffer(string: $0)) }
        )
    }

    /// The fields of an `application/x-www-form-urlencoded` body, each with every value it was given.
    static func parseForm(_ text: String) -> [String: [String]] {
        var fields: [String: [String]] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(part)
            }
            fields[decode(parts[0]), default: []].append(parts.count == 2 ? decode(parts[1]) : "")
        }
        return fields
    }
}

extension IntrospectionController {
    /// RFC 7662's response: `{"active": false}` alone for any token that may not be used.
    struct Introspection: ResponseEncodable {
        var active: Bool
        var scope: String?
        var sub: String?
        var exp: Int?
        var iat: Int?
        var tokenType: String?
        var clientID: String?
        /// The token's `meta`, an extension member (RFC 7662 §2.2), when it has one.
        var meta: JSONValue?

        enum CodingKeys: String, CodingKey {
            case active, scope, sub, exp, iat, meta
            case tokenType = "token_type"
            case clientID = "client_id"
        }
    }
}
