import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import TokenCrypto

@testable import Tessera

/// Forward auth, RFC 7662 introspection, rotation and last-used tracking.
@Suite("Downstream integration")
struct IntegrationEndpointTests {
    private func forwardAuth(_ api: APIClient, token: String?, scopes: [String] = []) async throws -> TestResponse {
        let query = scopes.isEmpty ? "" : "?" + scopes.map { "scope=\($0)" }.joined(separator: "&")
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await api.send(.get, "/api/auth" + query, key: Fixtures.verifierKey, headers: headers)
    }

    @Test func forwardAuthAnswersWithStatusAndHeaders() async throws {
        try await Fixtures.withAPI { api in
            let created = try await api.createToken(userID: "fwd", scopes: ["read", "repo:*"])
            let token = try #require(created["token"] as? String)

            let allowed = try await forwardAuth(api, token: token, scopes: ["read", "repo:write"])
            #expect(allowed.status == .noContent)
            #expect(allowed.headers[HTTPField.Name("X-Auth-User-Id")!] == "fwd")
            #expect(allowed.headers[HTTPField.Name("X-Auth-Scopes")!] == "read repo:*")
            #expect(allowed.headers[HTTPField.Name("X-Auth-Token-Id")!] == created["id"] as? String)

            let missingScope = try await forwardAuth(api, token: token, scopes: ["admin"])
            #expect(missingScope.status == .forbidden)
            #expect(missingScope.headers[.wwwAuthenticate]?.contains(#"error="insufficient_scope""#) == true)

            let missing = try await forwardAuth(api, token: nil)
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.wwwAuthenticate] == #"Bearer realm="tessera""#)  // RFC 6750: no error code without a token
            for candidate in ["tsr_wrong", AccessToken.generate(prefix: .default).secret] {
                let refused = try await forwardAuth(api, token: candidate)
                #expect(refused.status == .unauthorized)
                #expect(refused.headers[.wwwAuthenticate]?.contains(#"error="invalid_token""#) == true)
            }
            _ = try await api.send(.delete, "/api/tokens/\(created["id"] as! String)")
            #expect(try await forwardAuth(api, token: token).status == .unauthorized)
            let keyless = try await api.send(.get, "/api/auth", key: nil, headers: [.authorization: "Bearer \(token)"])
            #expect(keyless.status == .unauthorized)
            // The bearer token is the end user's, never taken for the key: the answer asks for X-API-Key alone.
            #expect(keyless.json["detail"] as? String == "An API key is required, in X-API-Key.")
        }
    }

    @Test func endUsersCannotSpendTheProxysFailureBudget() async throws {
        var limits = RateLimitSettings()
        limits.authFailures = RateLimitPolicy(name: "auth-failures", quota: 2, window: 60)
        let app = buildApplication(try Fixtures.configuration(rateLimits: limits), repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            for authorization in ["Token abc", "Bearer two words", "Digest x", "Bearer tsr_nope"] {
                let response = try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [.authorization: authorization])
                #expect(response.status == .unauthorized, "\(authorization)")
            }
            #expect(try await api.send(.get, "/api/tokens?userId=u").status == .ok)
            let created = try await api.createToken()
            let allowed = try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [.authorization: "Bearer \(created["token"] as! String)"])
            #expect(allowed.status == .noContent)
            // The address's whole budget is still there: two failures of its own are answered 401, the third 429.
            let wrongKey = "wrong-key-wrong-key-1"
            #expect(try await api.send(.get, "/api/auth", key: wrongKey).status == .unauthorized)
            #expect(try await api.send(.get, "/api/auth", key: wrongKey).status == .unauthorized)
            #expect(try await api.send(.get, "/api/auth", key: wrongKey).status == .tooManyRequests)
        }
    }

    @Test func aRotatedTokenCannotBeRotatedAgain() async throws {
        try await Fixtures.withAPI { api in
            let id = try #require(try await api.createToken()["id"] as? String)
            #expect(try await api.send(.post, "/api/tokens/\(id)/rotate", json: #"{"graceSeconds":600}"#).status == .created)
            let again = try await api.send(.post, "/api/tokens/\(id)/rotate", json: #"{"graceSeconds":600}"#)
            #expect(again.status == .conflict)
            #expect(again.json["type"] as? String == "urn:tessera:problem:token-already-rotated")
        }
    }

    @Test func introspectionFollowsRFC7662() async throws {
        try await Fixtures.withAPI { api in
            let created = try await api.createToken(userID: "oauth", scopes: ["read", "write"])
            let token = try #require(created["token"] as? String)
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

            let active = try await api.send(.post, "/oauth2/introspect", key: Fixtures.verifierKey, json: "token=\(token)&token_type_hint=access_token", headers: form)
            #expect(active.status == .ok)
            #expect(active.json["active"] as? Bool == true)
            #expect(active.json["scope"] as? String == "read write")
            #expect(active.json["sub"] as? String == "oauth")
            #expect(active.json["token_type"] as? String == "Bearer")
            #expect(active.json["client_id"] as? String == "admin")
            #expect((active.json["exp"] as? Int ?? 0) > (active.json["iat"] as? Int ?? Int.max))

            let inactive = try await api.send(.post, "/oauth2/introspect", key: Fixtures.verifierKey, json: "token=nope", headers: form)
            #expect(inactive.text == #"{"active":false}"#)

            // OAuth clients authenticate with HTTP Basic client_id:client_secret.
            let basic = "Basic " + Data("gateway:\(Fixtures.verifierKey)".utf8).base64EncodedString()
            var basicHeaders = form
            basicHeaders[.authorization] = basic
            #expect(try await api.send(.post, "/oauth2/introspect", key: nil, json: "token=\(token)", headers: basicHeaders).json["active"] as? Bool == true)
            basicHeaders[.authorization] = "Basic " + Data("someone:\(Fixtures.verifierKey)".utf8).base64EncodedString()
            #expect(try await api.send(.post, "/oauth2/introspect", key: nil, json: "token=\(token)", headers: basicHeaders).status == .unauthorized)

            #expect(try await api.send(.post, "/oauth2/introspect", key: Fixtures.verifierKey, json: #"{"token":"x"}"#).status == .unsupportedMediaType)
            #expect(try await api.send(.post, "/oauth2/introspect", key: Fixtures.verifierKey, json: "tokn=x", headers: form).status == .badRequest)
            #expect(try await api.send(.post, "/oauth2/introspect", key: nil, json: "token=\(token)", headers: form).status == .unauthorized)
        }
    }

    @Test func rotationIssuesANewTokenAndLimitsTheOldOne() async throws {
        try await Fixtures.withAPI { api in
            let created = try await api.createToken(userID: "rot", scopes: ["read"], minutes: 600)
            let oldToken = try #require(created["token"] as? String)
            let oldID = try #require(created["id"] as? String)

            let rotated = try await api.send(.post, "/api/tokens/\(oldID)/rotate", json: #"{"graceSeconds":3600}"#)
            #expect(rotated.status == .created)
            let newToken = try #require(rotated.json["token"] as? String)
            #expect(newToken != oldToken)
            #expect(rotated.json["userId"] as? String == "rot")
            #expect(rotated.json["scopes"] as? [String] == ["read"])
            #expect(rotated.json["expiresAt"] as? String == created["expiresAt"] as? String)
            #expect(try await api.verify(newToken)["active"] as? Bool == true)
            #expect(try await api.verify(oldToken)["active"] as? Bool == true)  // within its grace period

            let graceless = try await api.send(.post, "/api/tokens/\(rotated.json["id"] as! String)/rotate", json: #"{"graceSeconds":0}"#)
            #expect(graceless.status == .created)
            #expect(try await api.verify(newToken)["code"] as? String == "EXPIRED")

            _ = try await api.send(.delete, "/api/tokens/\(oldID)")
            #expect(try await api.send(.post, "/api/tokens/\(oldID)/rotate", json: #"{"graceSeconds":0}"#).status == .conflict)
            #expect(try await api.send(.post, "/api/tokens/\(UUID())/rotate", json: #"{"graceSeconds":0}"#).status == .notFound)
            #expect(try await api.send(.post, "/api/tokens/\(oldID)/rotate", json: #"{"graceSeconds":86401}"#).status == .badRequest)
            let audit = try await api.send(.get, "/api/audit?tokenId=\(oldID)").json["events"] as? [[String: Any]] ?? []
            #expect(audit.compactMap { $0["action"] as? String } == ["token.revoke", "token.rotate", "token.create"])
        }
    }

    @Test func usesAreWrittenInBatchesAtMostOnceAMinute() async throws {
        let repository = MemoryTokenRepository()
        let recorder = UsageRecorder(repository: repository, logger: Fixtures.logger)
        let service = TokenService(repository: repository, hasher: TokenHasher(currentKey: Fixtures.hashKey), prefix: .default, usage: recorder)
        let (token, record) = try await service.issue(
            TokenRequest(userID: "used", scopes: [], lifetimeMinutes: 60), by: Caller(name: "admin", role: .admin), logger: Fixtures.logger)
        for _ in 0..<50 { _ = try await service.verify(token.secret, logger: Fixtures.logger) }
        #expect(recorder.pendingCount == 1)
        #expect(await repository.token(id: record.id, logger: Fixtures.logger)?.lastUsedAt == nil)  // nothing written on the request path
        await recorder.flush()
        let used = try #require(await repository.token(id: record.id, logger: Fixtures.logger)?.lastUsedAt)
        #expect(abs(used.timeIntervalSinceNow) < 5)
        // Stored less than a minute ago: further uses are not noted again.
        for _ in 0..<10 { _ = try await service.verify(token.secret, logger: Fixtures.logger) }
        #expect(recorder.pendingCount == 0)
        _ = try await service.verify(token.secret, at: Date().addingTimeInterval(61), logger: Fixtures.logger)
        #expect(recorder.pendingCount == 1)
    }
}

@Suite("User ids")
struct UserIDTests {
    private static func body(userID: String) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: ["userId": userID, "expiresInMinutes": 5]), as: UTF8.self)
    }

    @Test(arguments: [" admin", "admin ", "   ", "a\u{200B}b", "a\u{2028}b", "\u{FEFF}admin", "a\tb", "a\u{85}b"])
    func aUserIDThatIsNotExactIsRefused(userID: String) async throws {
        let app = buildApplication(try Fixtures.configuration(), repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let refused = try await api.send(.post, "/api/tokens", json: try Self.body(userID: userID))
            #expect(refused.status == .badRequest)
            let errors = try #require(refused.json["errors"] as? [[String: Any]])
            #expect(errors.map { $0["field"] as? String } == ["userId"])
        }
    }

    @Test func exactUserIDsWithInnerSpacesAndOtherScriptsAreKept() async throws {
        let app = buildApplication(try Fixtures.configuration(), repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let created = try await api.send(.post, "/api/tokens", json: try Self.body(userID: "Zoë O'Brien + 42"))
            #expect(created.status == .created)
            #expect(created.json["userId"] as? String == "Zoë O'Brien + 42")
        }
    }

    /// Query values are percent-decoded and a `+` is a plus sign (RFC 3986), so each filter names exactly one user.
    @Test func listAndAuditFiltersNameExactlyOneUser() async throws {
        let app = buildApplication(try Fixtures.configuration(), repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let users = ["a b", "a+b", "50% & #1", "ünïcode 名前"]
            for user in users { #expect(try await api.send(.post, "/api/tokens", json: try Self.body(userID: user)).status == .created) }
            for user in users {
                let encoded = try #require(user.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
                let tokens = try #require(try await api.send(.get, "/api/tokens?userId=\(encoded)").json["tokens"] as? [[String: Any]])
                #expect(tokens.map { $0["userId"] as? String } == [user])
                let events = try #require(try await api.send(.get, "/api/audit?userId=\(encoded)").json["events"] as? [[String: Any]])
                #expect(events.map { $0["userId"] as? String } == [user])
            }
            let plus = try #require(try await api.send(.get, "/api/tokens?userId=a+b").json["tokens"] as? [[String: Any]])
            #expect(plus.map { $0["userId"] as? String } == ["a+b"])
        }
    }

    /// A token stored before the rule (user `" admin "`) must not pass forward auth as user `admin`.
    @Test func forwardAuthNeverPassesAUserIDAHeaderWouldChange() async throws {
        let configuration = try Fixtures.configuration()
        let repository = MemoryTokenRepository()
        for userID in [" admin ", "   "] {
            let token = AccessToken.generate(prefix: .default)
            _ = try await repository.create(
                NewToken(
                    userID: userID, scopes: [], name: nil, digest: configuration.hasher.digest(of: token), displayPrefix: token.displayPrefix,
                    lifetimeMinutes: 60, createdBy: "legacy"),
                logger: Fixtures.logger)
            let app = buildApplication(configuration, repository: repository, logger: Fixtures.logger)
            try await app.test(.router) { client in
                let api = APIClient(client: client)
                let answer = try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [.authorization: "Bearer \(token.secret)"])
                #expect(answer.status == .forbidden)
                #expect(answer.headers[HTTPField.Name("X-Auth-User-Id")!] == nil)
                #expect(answer.json["type"] as? String == "urn:tessera:problem:user-id-not-forwardable")
                // The token itself is still active for callers that read the user id from a JSON body.
                #expect(try await api.verify(token.secret)["userId"] as? String == userID)
            }
        }
    }
}
