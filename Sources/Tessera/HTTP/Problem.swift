import Foundation

import HTTPTypes
import Hummingbird

/// One failing field of a request, named by its JSON path (`scopes[2]`) or query parameter.
public struct FieldError: Codable, Sendable, Equatable {
    /// The field's name as the client sent it.
    public var field: String
    /// What is wrong and what would be accepted.
    public var message: String

    /// Creates a field error.
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

/// An RFC 9457 problem details body, sent as `application/problem+json`.
public struct ProblemDetails: Codable, Sendable, Equatable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String?
    /// The request's id, so an operator can find the matching log lines.
    public var requestId: String?
    /// Each failing field, for validation problems.
    public var errors: [FieldError]?
}

/// A client-facing failure: every one renders as a problem response, and none carries a secret.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    /// A short URN naming the kind of problem.
    public var type: String
    public var detail: String?
    public var fieldErrors: [FieldError]?
    /// Extra response header fields, such as `WWW-Authenticate`.
    public var headers: HTTPFields

    /// Creates an error.
    public init(_ status: HTTPResponse.Status, type: String? = nil, detail: String? = nil, fieldErrors: [FieldError]? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.type = type ?? "about:blank"
        self.detail = detail
        self.fieldErrors = fieldErrors
        self.headers = headers
    }

    /// `400`, listing every failing field.
    public static func validation(_ errors: [FieldError]) -> APIError {
        APIError(.badRequest, type: "urn:tessera:problem:validation", detail: "The request has invalid fields.", fieldErrors: errors)
    }

    /// `400` for a body that is not the JSON object the endpoint takes.
    public static func malformedBody(_ detail: String) -> APIError {
        APIError(.badRequest, type: "urn:tessera:problem:malformed-body", detail: detail)
    }

    /// `404` for a token id that does not exist.
    public static let tokenNotFound = APIError(.notFound, type: "urn:tessera:problem:token-not-found", detail: "No token has this id.")

    /// `503` while PostgreSQL cannot be reached; the client should retry.
    public static let databaseUnavailable = APIError(
        .serviceUnavailable,
        type: "urn:tessera:problem:database-unavailable",
        detail: "The token database cannot be reached right now; retry shortly.",
        headers: [.retryAfter: "5"]
    )

    /// `415` for a body that is not `application/json`.
    public static let unsupportedMediaType = APIError(
        .unsupportedMediaType,
        type: "urn:tessera:problem:unsupported-media-type",
        detail: "Send the body as Content-Type: application/json."
    )

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        ProblemDetails(type: type, title: status.reasonPhrase, status: status.code, detail: detail, requestId: context.requestID, errors: fieldErrors)
            .response(status: status, headers: headers)
    }
}

extension ProblemDetails {
    /// The problem as an `application/problem+json` response.
    func response(status: HTTPResponse.Status, headers extra: HTTPFields = [:]) -> Response {
        let body = (try? JSONEncoder.api.encode(self)) ?? Data(#"{"status":500,"title":"Internal Server Error","type":"about:blank"}"#.utf8)
        var headers = extra
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension RequestContext {
    /// The id of this request, as sent back in `X-Request-Id` and in problem bodies.
    public var requestID: String { id }
}
