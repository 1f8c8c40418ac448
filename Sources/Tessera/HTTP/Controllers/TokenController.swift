import Foundation
import Hummingbird
import NIOCore
import Logging
import TokenCrypto

/// The admin endpoints under `/api/tokens`: create, list, read and revoke.
struct TokenController {
    let service: TokenService
    /// The largest request body read, in bytes (`MAX_BODY_BYTES`).
    let maximumBodySize: Int
    /// Whether a new token may be granted `*`, every scope (`ALLOW_WILDCARD_ALL_SCOPE`).
    let allowsEveryScope: Bool
    /// The configured API keys' names: the audiences a token may name.
    let keyNames: Set<String>

    /// Default and largest page sizes of a listing.
    static let defaultPageSize = 50
    static let maximumPageSize = 100
    /// Longest lifetime a token may be given: one year.
    static let maximumLifetimeMinutes = 525_600

    var endpoints: RouteCollection<CallerRequestContext> {
        RouteCollection(context: CallerRequestContext.self)
            .post(use: create)
            .get(use: list)
            .get("{id}", use: show)
            .patch("{id}", use: update)
            .delete("{id}", use: revoke)
            .post("{id}/rotate", use: rotate)
            .post("revoke", use: revokeAll)
    }

    /// Longest time a rotated-out token may stay valid: one day.
    static let maximumGraceSeconds = 86_400

    /// `POST /api/tokens`: the token appears in this response only, after its row is committed.
    @Sendable func create(_ request: Request, context: CallerRequestContext) async throws -> EditedResponse<CreatedToken> {
        let tokenRequest = try Self.tokenRequest(
            from: try await request.jsonObject(context: context, maximumSize: maximumBodySize),
            allowingEveryScope: allowsEveryScope,
            keyNames: keyNames
        )
        let (token, record) = try await service.issue(tokenRequest, by: context.caller, logger: context.logger)
        return EditedResponse(
            status: .created,
            headers: [.location: "/api/tokens/\(record.id.lowercasedString)"],
            response: CreatedToken(record: record, token: token)
        )
    }

    /// `GET /api/tokens?userId=&limit=&cursor=&status=`: a page of one user's tokens, newest first.
    @Sendable func list(_ request: Request, context: CallerRequestContext) async throws -> TokenList {
        let query = try ListQuery(request.uri.queryParameters)
        let page = try await service.tokens(
            userID: query.userID,
            status: query.status,
            limit: query.limit,
            after: query.cursor,
            logger: context.logger
        )
        return TokenList(records: page.tokens, at: Date(), nextCursor: page.nextCursor?.encoded)
    }

    /// `GET /api/tokens/{id}`.
    @Sendable func show(_ request: Request, context: CallerRequestContext) async throws -> TokenMetadata {
        guard let record = try await service.token(id: try Self.tokenID(context), logger: context.logger) else {
            throw APIError.tokenNotFound
        }
        return TokenMetadata(record, at: Date())
    }

    /// `PATCH /api/tokens/{id}`: changes a token's name, data, pause, audiences or networks, narrows its scopes or
    /// shortens its life; answers its metadata.
    @Sendable func update(_ request: Request, context: CallerRequestContext) async throws -> TokenMetadata {
        let id = try Self.tokenID(context)
        let changes = try Self.tokenChanges(from: try await request.jsonObject(context: context, maximumSize: maximumBodySize), keyNames: keyNames)
        switch try await service.update(id: id, with: changes, by: context.caller, logger: context.logger) {
        case .updated(let record): return TokenMetadata(record, at: Date())
        case .notFound: throw APIError.tokenNotFound
        case .revoked: throw APIError(.conflict, type: "urn:tessera:problem:token-not-active", detail: "A revoked token cannot be changed.")
        case .refused(let refusals):
            // Well formed, but at odds with the token as it stands: a conflict with its state, not a bad request.
            throw APIError(
                .conflict, type: "urn:tessera:problem:change-not-allowed",
                detail: "A token's scopes can only narrow and its life only shorten.",
                fieldErrors: refusals.map { FieldError(field: $0.field, message: $0.message) })
        }
    }

    /// What `PATCH` may change.
    static let editableFields: Set<String> = [
        "name", "scopes", "expiresAt", "audiences", "allowedCidrs", "meta", "enabled", "maxUses", "refill", "rateLimit",
    ]

    /// Validates a `PATCH` body: every field optional, at least one given; `null` clears an optional field.
    static func tokenChanges(from object: [String: JSONValue], keyNames: Set<String>) throws -> TokenChanges {
        var reader = FieldReader(object, allowed: editableFields)
        var changes = TokenChanges()
        if object.isEmpty {
            reader.fail("body", "changes nothing; give at least one of \(editableFields.sorted().joined(separator: ", "))")
        }
        if object["name"] != nil {
            let name = reader.string("name", required: false)
            if let name {
                if name.unicodeScalars.count > 100 { reader.fail("name", "must be at most 100 characters") }
                if TextRules.hasControlCharacter(name) { reader.fail("name", "must not contain control characters") }
            }
            changes.name = .some(name)
        }
        if object["scopes"] != nil {
            if case .null? = object["scopes"] { reader.fail("scopes", "must be an array; [] removes every scope") }
            changes.scopes = TextRules.scopes(reader.strings("scopes"), field: "scopes", into: &reader)
        }
        if case .string(let text)? = object["expiresAt"] {
            if let date = try? Date(text, strategy: .iso8601) { changes.expiresAt = date } else { reader.fail("expiresAt", "must be a date and time such as 2026-12-31T23:59:59Z") }
        } else if object["expiresAt"] != nil {
            reader.fail("expiresAt", "must be a date and time such as 2026-12-31T23:59:59Z")
        }
        if object["audiences"] != nil { changes.audiences = .some(TextRules.audiences(reader.strings("audiences"), keyNames: keyNames, into: &reader)) }
        if object["allowedCidrs"] != nil { changes.allowedNetworks = .some(TextRules.networks(reader.strings("allowedCidrs"), into: &reader)) }
        if object["meta"] != nil { changes.meta = .some(TextRules.meta(reader.value("meta"), into: &reader)) }
        if object["enabled"] != nil { changes.enabled = reader.bool("enabled") }
        if object["maxUses"] != nil { changes.maxUses = .some(reader.integer("maxUses", required: false, in: TokenPolicy.usesRange)) }
        if object["refill"] != nil { changes.refill = .some(TextRules.refill(reader.value("refill"), into: &reader)) }
        if object["rateLimit"] != nil { changes.rateLimit = .some(TextRules.rateLimit(reader.value("rateLimit"), into: &reader)) }
        guard reader.errors.isEmpty else { throw APIError.validation(reader.errors) }
        return changes
    }

    /// `DELETE /api/tokens/{id}`: `204` whether this call or an earlier one revoked it.
    @Sendable func revoke(_ request: Request, context: CallerRequestContext) async throws -> HTTPResponse.Status {
        let id = try Self.tokenID(context)
        switch try await service.revoke(id: id, by: context.caller, logger: context.logger) {
        case .revoked, .alreadyRevoked:
            return .noContent
        case .notFound:
            throw APIError.tokenNotFound
        }
    }

    /// `POST /api/tokens/revoke` `{"userId"}`: every active token of the user, revoked in one transaction.
    @Sendable func revokeAll(_ request: Request, context: CallerRequestContext) async throws -> RevokedCount {
        var reader = FieldReader(try await request.jsonObject(context: context, maximumSize: maximumBodySize), allowed: ["userId"])
        let userID = reader.string("userId", required: true)
        if let userID, let problem = TextRules.userIDProblem(userID) { reader.fail("userId", problem) }
        guard reader.errors.isEmpty, let userID else { throw APIError.validation(reader.errors) }
        return RevokedCount(revoked: try await service.revokeAll(userID: userID, by: context.caller, logger: context.logger))
    }

    /// The body of `POST /api/tokens/revoke`.
    struct RevokedCount: ResponseEncodable {
        var revoked: Int
    }

    /// `POST /api/tokens/{id}/rotate` `{"graceSeconds"}`: a new token in place of an active one, shown once.
    @Sendable func rotate(_ request: Request, context: CallerRequestContext) async throws -> EditedResponse<CreatedToken> {
        let id = try Self.tokenID(context)
        var reader = FieldReader(try await request.jsonObject(context: context, maximumSize: maximumBodySize), allowed: ["graceSeconds"])
        let grace = reader.integer("graceSeconds", required: true, in: 0...Self.maximumGraceSeconds)
        guard reader.errors.isEmpty, let grace else { throw APIError.validation(reader.errors) }
        do {
            let (token, record) = try await service.rotate(id: id, gracePeriod: grace, by: context.caller, logger: context.logger)
            return EditedResponse(
                status: .created,
                headers: [.location: "/api/tokens/\(record.id.lowercasedString)"],
                response: CreatedToken(record: record, token: token)
            )
        } catch RotationError.notFound {
            throw APIError.tokenNotFound
        } catch RotationError.alreadyRotated {
            throw APIError(.conflict, type: "urn:tessera:problem:token-already-rotated", detail: "This token was rotated before; rotate its replacement instead.")
        } catch RotationError.notActive(let status) {
            throw APIError(.conflict, type: "urn:tessera:problem:token-not-active", detail: "Only an active token can be rotated; this one is \(status.rawValue).")
        }
    }

    /// The `{id}` path parameter as a UUID; anything else cannot name a token, so it is a `404`.
    static func tokenID(_ context: CallerRequestContext) throws -> UUID {
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else { throw APIError.tokenNotFound }
        return id
    }

    /// Validates a create body, reporting every failing field at once.
    static func tokenRequest(from object: [String: JSONValue], allowingEveryScope: Bool, keyNames: Set<String>) throws -> TokenRequest {
        // What PATCH edits, but a lifetime instead of an expiry, and every new token enabled.
        var reader = FieldReader(object, allowed: editableFields.subtracting(["expiresAt", "enabled"]).union(["userId", "expiresInMinutes"]))
        let userID = reader.string("userId", required: true)
        if let userID, let problem = TextRules.newUserIDProblem(userID) { reader.fail("userId", problem) }
        let scopes = TextRules.scopes(reader.strings("scopes"), field: "scopes", into: &reader)
        if !allowingEveryScope, let index = scopes?.firstIndex(of: Scope.everything) {
            reader.fail("scopes[\(index)]", "'*' grants every scope; the service refuses it unless ALLOW_WILDCARD_ALL_SCOPE=true")
        }
        let minutes = reader.integer("expiresInMinutes", required: true, in: 1...maximumLifetimeMinutes)
        let name = reader.string("name", required: false)
        if let name {
            if name.unicodeScalars.count > 100 { reader.fail("name", "must be at most 100 characters") }
            if TextRules.hasControlCharacter(name) { reader.fail("name", "must not contain control characters") }
        }
        let policy = TextRules.policy(from: &reader, keyNames: keyNames)
        guard reader.errors.isEmpty, let userID, let minutes else { throw APIError.validation(reader.errors) }
        return TokenRequest(userID: userID, scopes: scopes ?? [], lifetimeMinutes: minutes, name: name, policy: policy)
    }
}

extension TokenController {
    /// The listing's query parameters, validated.
    struct ListQuery {
        var userID: String
        var status: TokenStatusFilter
        var limit: Int
        var cursor: TokenCursor?

        init(_ parameters: Parameters) throws {
            var reader = QueryReader(parameters, allowed: ["userId", "limit", "cursor", "status"])
            let userID = reader.userID(required: true)
            limit = reader.limit(default: TokenController.defaultPageSize, maximum: TokenController.maximumPageSize)
            status = reader.decoded("status", message: "must be one of active, revoked, expired, all", TokenStatusFilter.init(rawValue:)) ?? .all
            cursor = reader.decoded("cursor", message: "is not a nextCursor value from an earlier page", TokenCursor.init(encoded:))
            guard reader.errors.isEmpty, let userID else { throw APIError.validation(reader.errors) }
            self.userID = userID
        }
    }

    /// The body of `201 Created`: what every answer shows of a token and, this once, the token itself, written
    /// straight into the response buffer as `JSONEncoder.api` would write it (tested; docs/architecture.md).
    struct CreatedToken: ResponseGenerator {
        var record: TokenRecord
        var token: String

        init(record: TokenRecord, token: AccessToken) {
            self.record = record
            self.token = token.secret
        }

        var body: ByteBuffer {
            var buffer = ByteBufferAllocator().buffer(capacity: 320 + record.userID.utf8.count)
            buffer.writeStaticString(#"{"createdAt":"#); JSONText.write(record.createdAt, to: &buffer)
            buffer.writeStaticString(#","expiresAt":"#); JSONText.write(record.expiresAt, to: &buffer)
            buffer.writeStaticString(#","id":"#); JSONText.write(record.id, to: &buffer)
            buffer.writeStaticString(#","name":"#); JSONText.write(orNull: record.name, to: &buffer)
            buffer.writeStaticString(#","prefix":"#); JSONText.write(record.displayPrefix, to: &buffer)
            buffer.writeStaticString(#","scopes":"#); JSONText.write(record.scopes, to: &buffer)
            buffer.writeStaticString(#","token":"#); JSONText.write(token, to: &buffer)
            buffer.writeStaticString(#","userId":"#); JSONText.write(record.userID, to: &buffer)
            buffer.writeStaticString("}")
            return buffer
        }

        func response(from request: Request, context: some RequestContext) -> Response {
            JSONText.response(body)
        }
    }

    /// A page of metadata, `{nextCursor, tokens: [TokenMetadata]}`, written straight into the response buffer: the
    /// same bytes as `JSONEncoder.api` writes (tested), at a fraction of the cost (docs/architecture.md).
    struct TokenList: ResponseGenerator {
        var records: [TokenRecord]
        var now: Date
        var nextCursor: String?

        init(records: [TokenRecord], at now: Date, nextCursor: String?) {
            self.records = records
            self.now = now
            self.nextCursor = nextCursor
        }

        var body: ByteBuffer {
            var buffer = ByteBufferAllocator().buffer(capacity: 64 + records.count * 420)
            buffer.writeStaticString(#"{"nextCursor":"#)
            if let nextCursor { JSONText.write(nextCursor, to: &buffer) } else { buffer.writeStaticString("null") }
            buffer.writeStaticString(#","tokens":["#)
            for (index, record) in records.enumerated() {
                if index > 0 { buffer.writeStaticString(",") }
                Self.write(record, at: now, to: &buffer)
            }
            buffer.writeStaticString("]}")
            return buffer
        }

        /// One record as ``TokenMetadata`` encodes it, keys sorted.
        private static func write(_ record: TokenRecord, at now: Date, to buffer: inout ByteBuffer) {
            buffer.writeStaticString(#"{"allowedCidrs":"#); JSONText.write(orNull: record.policy.allowedNetworks?.map(\.text), to: &buffer)
            buffer.writeStaticString(#","audiences":"#); JSONText.write(orNull: record.policy.audiences, to: &buffer)
            buffer.writeStaticString(#","createdAt":"#); JSONText.write(record.createdAt, to: &buffer)
            buffer.writeStaticString(#","enabled":"#); buffer.writeStaticString(record.policy.enabled ? "true" : "false")
            buffer.writeStaticString(#","expiresAt":"#); JSONText.write(record.expiresAt, to: &buffer)
            buffer.writeStaticString(#","id":"#); JSONText.write(record.id, to: &buffer)
            buffer.writeStaticString(#","lastUsedAt":"#); JSONText.write(orNull: record.lastUsedAt, to: &buffer)
            buffer.writeStaticString(#","maxUses":"#); buffer.writeString(record.policy.maxUses.map(String.init) ?? "null")
            buffer.writeStaticString(#","meta":"#); buffer.writeString(record.policy.meta ?? "null")
            buffer.writeStaticString(#","name":"#); JSONText.write(orNull: record.name, to: &buffer)
            buffer.writeStaticString(#","prefix":"#); JSONText.write(record.displayPrefix, to: &buffer)
            buffer.writeStaticString(#","rateLimit":"#); JSONText.write(orNull: record.policy.rateLimit?.text, to: &buffer)
            buffer.writeStaticString(#","refill":"#)
            if let refill = record.policy.refill {
                buffer.writeString(#"{"amount":\#(refill.amount),"every":"\#(refill.period.rawValue)"}"#)
            } else {
                buffer.writeStaticString("null")
            }
            buffer.writeStaticString(#","remaining":"#); buffer.writeString(record.policy.maxUses == nil ? "null" : String(record.usesLeft ?? 0))
            buffer.writeStaticString(#","replacedBy":"#); JSONText.write(orNull: record.replacedBy, to: &buffer)
            buffer.writeStaticString(#","replaces":"#); JSONText.write(orNull: record.replaces, to: &buffer)
            buffer.writeStaticString(#","revokedAt":"#); JSONText.write(orNull: record.revokedAt, to: &buffer)
            buffer.writeStaticString(#","scopes":"#); JSONText.write(record.scopes, to: &buffer)
            buffer.writeStaticString(#","status":"#); JSONText.write(record.status(at: now).rawValue, to: &buffer)
            buffer.writeStaticString(#","userId":"#); JSONText.write(record.userID, to: &buffer)
            buffer.writeStaticString("}")
        }

        func response(from request: Request, context: some RequestContext) -> Response {
            JSONText.response(body)
        }
    }
}

/// What every answer about a token shows: never the secret, never its digest.
struct TokenSummary: Encodable, Equatable {
    var id: String
    var prefix: String
    var userId: String
    var scopes: [String]
    @EncodesNull var name: String?
    var createdAt: Date
    var expiresAt: Date

    init(_ record: TokenRecord) {
        self.id = record.id.lowercasedString
        self.prefix = record.displayPrefix
        self.userId = record.userID
        self.scopes = record.scopes
        self.name = record.name
        self.createdAt = record.createdAt
        self.expiresAt = record.expiresAt
    }
}

/// What lists and reads show of a token: its summary, when it was last used or revoked, its rotation links and
/// its status.
struct TokenMetadata: ResponseEncodable, Equatable {
    var summary: TokenSummary
    var lastUsedAt: Date?
    var revokedAt: Date?
    var replaces: String?
    var replacedBy: String?
    var status: TokenStatus
    var audiences: [String]?
    var allowedCidrs: [String]?
    var meta: JSONValue?
    var enabled: Bool
    var maxUses: Int?
    var refill: Refill?
    var remaining: Int?
    var rateLimit: String?

    /// How a usage-limited token's uses are restored.
    struct Refill: Encodable, Equatable {
        var amount: Int
        var every: String
    }

    init(_ record: TokenRecord, at now: Date) {
        self.summary = TokenSummary(record)
        self.lastUsedAt = record.lastUsedAt
        self.revokedAt = record.revokedAt
        self.replaces = record.replaces?.lowercasedString
        self.replacedBy = record.replacedBy?.lowercasedString
        self.status = record.status(at: now)
        self.audiences = record.policy.audiences
        self.allowedCidrs = record.policy.allowedNetworks?.map(\.text)
        self.meta = record.policy.meta.flatMap { try? JSONParser.parse(ByteBuffer(string: $0)) }
        self.enabled = record.policy.enabled
        self.maxUses = record.policy.maxUses
        self.refill = record.policy.refill.map { Refill(amount: $0.amount, every: $0.period.rawValue) }
        self.remaining = record.policy.maxUses == nil ? nil : record.usesLeft ?? 0
        self.rateLimit = record.policy.rateLimit?.text
    }

    private enum CodingKeys: String, CodingKey {
        case lastUsedAt, revokedAt, replaces, replacedBy, status, audiences, allowedCidrs, meta, enabled, maxUses, refill, remaining, rateLimit
    }

    func encode(to encoder: any Encoder) throws {
        try summary.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(audiences, forKey: .audiences)
        try container.encode(allowedCidrs, forKey: .allowedCidrs)
        try container.encode(meta, forKey: .meta)
        try container.encode(enabled, forKey: .enabled)
        try container.encode(maxUses, forKey: .maxUses)
        try container.encode(refill, forKey: .refill)
        try container.encode(remaining, forKey: .remaining)
        try container.encode(rateLimit, forKey: .rateLimit)
        try container.encode(lastUsedAt, forKey: .lastUsedAt)  // null when absent, as every key is always present
        try container.encode(revokedAt, forKey: .revokedAt)
        try container.encode(replaces, forKey: .replaces)
        try container.encode(replacedBy, forKey: .replacedBy)
        try container.encode(status, forKey: .status)
    }
}
