import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Tessera

/// One request's answer, with the body parsed as JSON when it is JSON.
struct TestResponse {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var text: String

    /// The body as a JSON object (an empty one when it is not).
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// The problem body's field errors, by field name.
    var fieldErrors: [String: String] {
        let errors = json["errors"] as? [[String: String]] ?? []
        return Dictionary(errors.map { ($0["field"] ?? "", $0["message"] ?? "") }) { first, _ in first }
    }
}

/// Sends requests through a test client with the API key headers the tests need.
struct APIClient {
    let client: any TestClientProtocol

    @discardableResult
    func send(
        _ method: HTTPRequest.Method,
        _ uri: String,
        key: String? = Fixtures.adminKey,
        json: String? = nil,
        headers extra: HTTPFields = [:],
        body: String? = nil
    ) async throws -> TestResponse {
        var headers = extra
        if let key { headers[HTTPField.Name("X-API-Key")!] = key }
        if json != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: (json ?? body).map { ByteBuffer(string: $0) }) { response in
            TestResponse(status: response.status, headers: response.headers, text: String(buffer: response.body))
        }
    }

    /// Creates a token for `userID` and returns the `201` body.
    func createToken(userID: String = "user123", scopes: [String] = ["read", "write"], minutes: Int = 60) async throws -> [String: Any] {
        let scopeList = scopes.map { "\"\($0)\"" }.joined(separator: ",")
        let response = try await send(.post, "/api/tokens", json: #"{"userId":"\#(userID)","scopes":[\#(scopeList)],"expiresInMinutes":\#(minutes)}"#)
        #expect(response.status == .created)
        return response.json
    }

    /// Verifies `token` and returns the body.
    func verify(_ token: String, requiredScopes: [String]? = nil, key: String = Fixtures.verifierKey) async throws -> [String: Any] {
        let scopes = requiredScopes.map { ",\"requiredScopes\":[\($0.map { "\"\($0)\"" }.joined(separator: ","))]" } ?? ""
        let response = try await send(.post, "/api/tokens/verify", key: key, json: #"{"token":"\#(token)"\#(scopes)}"#)
        #expect(response.status == .ok)
        return response.json
    }
}
