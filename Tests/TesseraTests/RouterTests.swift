import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import TokenCrypto

@testable import Tessera

/// The HTTP API over the in-memory repository: status codes, bodies and headers of every endpoint.
@Suite("HTTP API")
struct RouterTests {
    @Test func createReturnsTheTokenOnceWithNoStore() async throws {
        try await Fixtures.withAPI { api in
            let response = try await api.send(
                .post, "/api/tokens", json: #"{"userId":"user123","scopes":["read","write"],"expiresInMinutes":60,"name":"CI"}"#)
            #expect(response.status == .created)
            #expect(response.headers[.cacheControl] == "no-store")
            let body = response.json
            let token = try #require(body["token"] as? String)
            #expect(token.hasPrefix("tsr_"))
            #expect(body["prefix"] as? String == String(token.prefix(8)))
            #expect(body["userId"] as? String == "user123")
            #expect(body["scopes"] as? [String] == ["read", "write"])
            #expect(body["name"] as? String == "CI")
            #expect(Set(body.keys) == ["id", "token", "prefix", "userId", "scopes", "name", "createdAt", "expiresAt"])
            let id = try #require(body["id"] as? String)
            #expect(response.headers[.location] == "/api/tokens/\(id)")
        }
    }

    @Test func listAndGetShowMetadataButNeverTheSecret() async throws {
        try await Fixtures.withAPI { api in
            let created = try await api.createToken(userID: "alice")
            let token = try #require(created["token"] as? String)
            let id = try #require(created["id"] as? String)

            let list = try await api.send(.get, "/api/tokens?userId=alice")
            #expect(list.status == .ok)
            #expect(!list.text.contains(token))
            let tokens = try #require(list.json["tokens"] as? [[String: Any]])
            #expect(tokens.count == 1)
            #expect(Set(tokens[0].keys) == ["id", "prefix", "userId", "scopes", "name", "createdAt", "expiresAt", "lastUsedAt", "revokedAt", "replaces", "replacedBy", "status", "audiences", "allowedCidrs", "meta", "enabled", "maxUses", "refill", "remaining", "rateLimit"])
            #expect(tokens[0]["status"] as? String == "active")
            #expect(list.json.keys.contains("nextCursor"))

            let single = try await api.send(.get, "/api/tokens/\(id)")
            #expect(single.status == .ok)
            #expect(!single.text.contains(token))
            #expect(single.json["prefix"] as? String == String(token.prefix(8)))
        }
    }

    @Test func revokingTwiceIsIdempotent() async throws {
        try await Fixtures.withAPI { api in
            let created = try await api.createToken()
            let id = try #require(created["id"] as? String)
            #expect(try await api.send(.delete, "/api/tokens/\(id)").status == .noContent)
            #expect(try await api.send(.delete, "/api/tokens/\(id)").status == .noContent)
            #expect(try await api.send(.get, "/api/tokens/\(id)").json["status"] as? String == "revoked")
            #expect(try await api.send(.delete, "/api/tokens/\(UUID())").status == .notFound)
        }
    }

    @Test func verifyReportsActiveThenRevoked() async throws {
        try await Fixtures.withAPI { api in
            let created = try await api.createToken(scopes: ["read", "repo:*"])
            let token = try #require(created["token"] as? String)
            let active = try await api.verify(token, requiredScopes: ["read", "repo:write"])
            #expect(active["active"] as? Bool == true)
            #expect(active["tokenId"] as? String == created["id"] as? String)
            #expect(active["userId"] as? String == "user123")
            #expect(Set(active.keys) == ["active", "tokenId", "userId", "scopes", "expiresAt", "createdAt"])

            #expect(try await api.verify(token, requiredScopes: ["admin"])["code"] as? String == "INSUFFICIENT_SCOPE")
            _ = try await api.send(.delete, "/api/tokens/\(created["id"] as! String)")
            let revoked = try await api.verify(token)
            #expect(revoked["active"] as? Bool == false)
            #expect(revoked["code"] as? String == "REVOKED")
            #expect(Set(revoked.keys) == ["active", "code"])
        }
    }

    @Test func verifyReportsMalformedAndUnknownTokens() async throws {
        try await Fixtures.withAPI { api in
            let token = try #require(try await api.createToken()["token"] as? String)
            var tampered = Array(token)
            tampered[10] = tampered[10] == "a" ? "b" : "a"
            #expect(try await api.verify(String(tampered))["code"] as? String == "MALFORMED")
            #expect(try await api.verify("not a token")["code"] as? String == "MALFORMED")
            // Well formed, right checksum, never issued.
            let stranger = AccessToken.generate(prefix: .default).secret
            #expect(try await api.verify(stranger)["code"] as? String == "NOT_FOUND")
        }
    }

    @Test func adminKeyMayAlsoVerify() async throws {
        try await Fixtures.withAPI { api in
            let token = try #require(try await api.createToken()["token"] as? String)
            #expect(try await api.verify(token, key: Fixtures.adminKey)["active"] as? Bool == true)
        }
    }

    @Test func bearerAuthorizationWorksLikeXAPIKey() async throws {
        try await Fixtures.withAPI { api in
            let response = try await api.send(.get, "/api/tokens?userId=u", key: nil, headers: [.authorization: "Bearer \(Fixtures.adminKey)"])
            #expect(response.status == .ok)
            let wrong = try await api.send(.get, "/api/tokens?userId=u", key: nil, headers: [.authorization: "Bearer wrong-key-wrong-key-1"])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.wwwAuthenticate] == #"Bearer realm="tessera", error="invalid_token""#)
        }
    }

    @Test func anUnreadableAuthorizationHeaderIs401EvenBesideAValidKey() async throws {
        try await Fixtures.withAPI { api in
            for authorization in ["Basic !!not-base64", "Bearer", "Bearer two words", "Token abc"] {
                let response = try await api.send(.get, "/api/tokens?userId=u", headers: [.authorization: authorization])
                #expect(response.status == .unauthorized, "\(authorization)")
                #expect(response.headers[.wwwAuthenticate] == #"Bearer realm="tessera", error="invalid_request""#)
            }
            // A well-formed bearer value is ignored when X-API-Key is present (it may carry something else).
            #expect(try await api.send(.get, "/api/tokens?userId=u", headers: [.authorization: "Bearer other-thing"]).status == .ok)
        }
    }

    @Test func missingOrWrongKeyIs401WithAChallenge() async throws {
        try await Fixtures.withAPI { api in
            for key in [nil, "wrong-key-wrong-key-wrong", Fixtures.adminKey + "x", ""] as [String?] {
                let response = try await api.send(.get, "/api/tokens?userId=u", key: key)
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
                #expect(response.headers[.contentType] == "application/problem+json")
                #expect(response.json["status"] as? Int == 401)
            }
        }
    }

    @Test func verifierKeyIsForbiddenFromAdminRoutes() async throws {
        try await Fixtures.withAPI { api in
            for (method, uri) in [(HTTPRequest.Method.get, "/api/tokens?userId=u"), (.delete, "/api/tokens/\(UUID())"), (.get, "/api/tokens/\(UUID())")] {
                #expect(try await api.send(method, uri, key: Fixtures.verifierKey).status == .forbidden)
            }
            let create = try await api.send(.post, "/api/tokens", key: Fixtures.verifierKey, json: #"{"userId":"u","expiresInMinutes":5}"#)
            #expect(create.status == .forbidden)
            #expect(create.json["type"] as? String == "urn:tessera:problem:forbidden")
        }
    }

    @Test func invalidCreateBodiesListEveryFailingField() async throws {
        try await Fixtures.withAPI { api in
            let response = try await api.send(
                .post, "/api/tokens",
                json: #"{"userId":"","scopes":["ok","bad scope","ok"],"expiresInMinutes":525601,"name":"\#(String(repeating: "n", count: 101))","admin":true}"#
            )
            #expect(response.status == .badRequest)
            #expect(response.headers[.contentType] == "application/problem+json")
            let errors = response.fieldErrors
            #expect(Set(errors.keys) == ["userId", "scopes[1]", "scopes[2]", "expiresInMinutes", "name", "admin"])
        }
    }

    @Test(arguments: [
        (#"{"scopes":[],"expiresInMinutes":60}"#, "userId"),
        (#"{"userId":"u","expiresInMinutes":60.5}"#, "expiresInMinutes"),
        (#"{"userId":"u","expiresInMinutes":"60"}"#, "expiresInMinutes"),
        (#"{"userId":"u","expiresInMinutes":0}"#, "expiresInMinutes"),
        (#"{"userId":"u"}"#, "expiresInMinutes"),
        (#"{"userId":42,"expiresInMinutes":60}"#, "userId"),
        (#"{"userId":"a\u0007b","expiresInMinutes":60}"#, "userId"),
        (#"{"userId":"u","expiresInMinutes":60,"scopes":"read"}"#, "scopes"),
        (#"{"userId":"u","expiresInMinutes":60,"scopes":[1]}"#, "scopes[0]"),
    ])
    func eachInvalidFieldIsNamed(body: String, field: String) async throws {
        try await Fixtures.withAPI { api in
            let response = try await api.send(.post, "/api/tokens", json: body)
            #expect(response.status == .badRequest)
            #expect(response.fieldErrors.keys.contains(field), "\(response.text)")
        }
    }

    @Test func tooManyScopesAndTooLongUserIDAreRejected() async throws {
        try await Fixtures.withAPI { api in
            let scopes = (0..<33).map { "\"s\($0)\"" }.joined(separator: ",")
            let response = try await api.send(
                .post, "/api/tokens", json: #"{"userId":"\#(String(repeating: "u", count: 129))","scopes":[\#(scopes)],"expiresInMinutes":1}"#)
            #expect(response.status == .badRequest)
            #expect(Set(response.fieldErrors.keys) == ["userId", "scopes"])
        }
    }

    @Test func bodiesThatAreNotJSONObjectsAre400() async throws {
        try await Fixtures.withAPI { api in
            for body in ["{", "[]", "\"x\"", ""] {
                let response = try await api.send(.post, "/api/tokens", json: body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(response.json["type"] as? String == "urn:tessera:problem:malformed-body")
            }
        }
    }

    @Test func nonJSONContentTypeIs415() async throws {
        try await Fixtures.withAPI { api in
            for contentType in ["text/plain", "application/x-www-form-urlencoded", "application/json-patch+json", "application/jsonx"] {
                let response = try await api.send(
                    .post, "/api/tokens", json: #"{"userId":"u","expiresInMinutes":5}"#, headers: [.contentType: contentType])
                #expect(response.status == .unsupportedMediaType)
            }
            let charset = try await api.send(
                .post, "/api/tokens", json: #"{"userId":"u","expiresInMinutes":5}"#, headers: [.contentType: "application/json; charset=utf-8"])
            #expect(charset.status == .created)
            // Media types are case-insensitive: spellings other than the usual two are parsed, not refused.
            let shouted = try await api.send(
                .post, "/api/tokens", json: #"{"userId":"u","expiresInMinutes":5}"#, headers: [.contentType: "Application/JSON; Charset=UTF-8"])
            #expect(shouted.status == .created)
        }
    }

    @Test func oversizedBodyIs413() async throws {
        try await Fixtures.withAPI { api in
            let padding = String(repeating: "x", count: 70 * 1024)
            let response = try await api.send(.post, "/api/tokens", json: #"{"userId":"u","expiresInMinutes":5,"name":"\#(padding)"}"#)
            #expect(response.status == .contentTooLarge)
            #expect(response.headers[.contentType] == "application/problem+json")
        }
    }

    @Test func unknownAndMalformedIdsAre404() async throws {
        try await Fixtures.withAPI { api in
            #expect(try await api.send(.get, "/api/tokens/\(UUID())").status == .notFound)
            let malformed = try await api.send(.get, "/api/tokens/not-a-uuid")
            #expect(malformed.status == .notFound)
            #expect(malformed.json["type"] as? String == "urn:tessera:problem:token-not-found")
        }
    }

    @Test func listValidatesItsQuery() async throws {
        try await Fixtures.withAPI { api in
            #expect(try await api.send(.get, "/api/tokens").fieldErrors.keys.contains("userId"))
            let response = try await api.send(.get, "/api/tokens?userId=u&limit=0&status=old&cursor=zzz&sort=asc")
            #expect(response.status == .badRequest)
            #expect(Set(response.fieldErrors.keys) == ["limit", "status", "cursor", "sort"])
            #expect(try await api.send(.get, "/api/tokens?userId=u&limit=101").status == .badRequest)
            // Present but empty is not absent.
            let empty = try await api.send(.get, "/api/tokens?userId=&cursor=&status=&limit=")
            #expect(Set(empty.fieldErrors.keys) == ["userId", "cursor", "status", "limit"])
        }
    }

    @Test func listFiltersByStatusAndPages() async throws {
        try await Fixtures.withAPI { api in
            var ids: [String] = []
            for _ in 0..<5 { ids.append(try #require(try await api.createToken(userID: "pager")["id"] as? String)) }
            _ = try await api.send(.delete, "/api/tokens/\(ids[0])")

            var seen: [String] = []
            var cursor: String? = nil
            repeat {
                let query = "/api/tokens?userId=pager&limit=2" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await api.send(.get, query).json
                seen += (page["tokens"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                cursor = page["nextCursor"] as? String
            } while cursor != nil
            #expect(seen == ids.reversed())

            let revoked = try await api.send(.get, "/api/tokens?userId=pager&status=revoked").json["tokens"] as? [[String: Any]]
            #expect(revoked?.compactMap { $0["id"] as? String } == [ids[0]])
            let active = try await api.send(.get, "/api/tokens?userId=pager&status=active").json["tokens"] as? [[String: Any]]
            #expect(active?.compactMap { $0["id"] as? String } == Array(ids.dropFirst().reversed()))
        }
    }

    @Test func everyResponseCarriesSecurityHeadersAndARequestId() async throws {
        try await Fixtures.withAPI { api in
            for response in [
                try await api.send(.get, "/healthz", key: nil),
                try await api.send(.get, "/api/tokens?userId=u", key: nil),
                try await api.send(.get, "/nowhere"),
            ] {
                #expect(response.headers[.cacheControl] == "no-store")
                #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
                #expect(response.headers[HTTPField.Name("X-Request-Id")!]?.isEmpty == false)
                #expect(response.headers[.server] == nil)
            }
        }
    }

    @Test func unknownRouteIsAProblem404() async throws {
        try await Fixtures.withAPI { api in
            let response = try await api.send(.get, "/api/nothing-here")
            #expect(response.status == .notFound)
            #expect(response.headers[.contentType] == "application/problem+json")
        }
    }
}
