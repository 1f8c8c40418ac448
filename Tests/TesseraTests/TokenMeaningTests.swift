import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import Tessera

/// What a token means: its scopes cover only what they say, and a revocation reaches every rotation of it.
@Suite("Token meaning")
struct TokenMeaningTests {
    @Test func scopesAreSegmentsWithAWildcardOnlyAsAWholeLastSegment() {
        for scope in ["repo", "repo:read", "repo:*", "*", "a.b/c-d_e:F9", "repo:read:x", String(repeating: "a", count: 64)] {
            #expect(Scope.isValid(scope), "\(scope)")
        }
        for scope in ["", "repo*", "re*po", "*:read", "repo:*:x", "repo::read", ":repo", "repo:", "repo:**", "**", "repo read", "répo", String(repeating: "a", count: 65)] {
            #expect(!Scope.isValid(scope), "\(scope)")
        }
    }

    @Test func aWildcardCoversOnlyTheSegmentsAfterItsOwn() {
        #expect(Scope.covers(["repo:*"], "repo:read"))
        #expect(Scope.covers(["repo:*"], "repo:read:x"))
        #expect(Scope.covers(["repo:*"], "repo:*"))
        #expect(!Scope.covers(["repo:*"], "repository"))
        #expect(!Scope.covers(["repo:*"], "repository:read"))
        #expect(!Scope.covers(["repo:*"], "repo"))
        #expect(!Scope.covers(["repo:read"], "repo:*"))
        #expect(!Scope.covers(["repo:read"], "repo:read:x"))
        #expect(Scope.covers(["a", "*"], "anything:at:all"))
        // A scope stored under the old rules, such as `repo*`, now matches only itself.
        #expect(Scope.covers(["repo*"], "repo*"))
        #expect(!Scope.covers(["repo*"], "repository:delete"))
    }

    @Test func everyScopeIsRefusedAtCreationUnlessTheServiceAllowsIt() async throws {
        let strict = buildApplication(try Fixtures.configuration(), repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await strict.test(.router) { client in
            let api = APIClient(client: client)
            let refused = try await api.send(.post, "/api/tokens", json: #"{"userId":"u","scopes":["read","*"],"expiresInMinutes":5}"#)
            #expect(refused.status == .badRequest)
            #expect(refused.fieldErrors["scopes[1]"]?.contains("ALLOW_WILDCARD_ALL_SCOPE=true") == true)
            let oldWildcard = try await api.send(.post, "/api/tokens", json: #"{"userId":"u","scopes":["repo*"],"expiresInMinutes":5}"#)
            #expect(oldWildcard.status == .badRequest)
            #expect(oldWildcard.fieldErrors["scopes[0]"] == Scope.grammar)
            #expect((try await api.send(.get, "/api/tokens?userId=u").json["tokens"] as? [Any])?.isEmpty == true)
            // A segment wildcard is fine, and means what it says.
            let created = try await api.createToken(userID: "u", scopes: ["repo:*"])
            let token = try #require(created["token"] as? String)
            #expect(try await api.verify(token, requiredScopes: ["repo:read:x"])["active"] as? Bool == true)
            #expect(try await api.verify(token, requiredScopes: ["repository:delete"])["code"] as? String == "INSUFFICIENT_SCOPE")
        }
        var configuration = try Fixtures.configuration()
        configuration.allowsEveryScope = true
        let lax = buildApplication(configuration, repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await lax.test(.router) { client in
            let api = APIClient(client: client)
            let token = try #require(try await api.createToken(userID: "u", scopes: ["*"])["token"] as? String)
            #expect(try await api.verify(token, requiredScopes: ["repository:delete", "x"])["active"] as? Bool == true)
        }
    }

    @Test func rotationLinksShowInMetadataAndARevocationReachesTheLineage() async throws {
        let app = buildApplication(try Fixtures.configuration(), repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let old = try await api.createToken(userID: "r")
            let oldID = try #require(old["id"] as? String)
            let rotated = try await api.send(.post, "/api/tokens/\(oldID)/rotate", json: #"{"graceSeconds":3600}"#)
            #expect(rotated.status == .created)
            let newID = try #require(rotated.json["id"] as? String)
            let oldMetadata = try await api.send(.get, "/api/tokens/\(oldID)").json
            #expect(oldMetadata["replacedBy"] as? String == newID)
            #expect(oldMetadata["replaces"] is NSNull)
            let newMetadata = try await api.send(.get, "/api/tokens/\(newID)").json
            #expect(newMetadata["replaces"] as? String == oldID)
            #expect(newMetadata["replacedBy"] is NSNull)
            // In its grace period the old token verifies; revoking the new one ends that.
            #expect(try await api.verify(try #require(old["token"] as? String))["active"] as? Bool == true)
            #expect(try await api.send(.delete, "/api/tokens/\(newID)").status == .noContent)
            #expect(try await api.verify(try #require(old["token"] as? String))["code"] as? String == "REVOKED")
            #expect(try await api.verify(try #require(rotated.json["token"] as? String))["code"] as? String == "REVOKED")
        }
    }

    @Test func everyActiveTokenOfAUserCanBeRevokedAtOnce() async throws {
        let app = buildApplication(try Fixtures.configuration(), repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let tokens = [try await api.createToken(userID: "a b"), try await api.createToken(userID: "a b")].compactMap { $0["token"] as? String }
            let bystander = try #require(try await api.createToken(userID: "a+b")["token"] as? String)
            let revoked = try await api.send(.post, "/api/tokens/revoke", json: #"{"userId":"a b"}"#)
            #expect(revoked.status == .ok)
            #expect(revoked.json["revoked"] as? Int == 2)
            #expect(revoked.headers[HTTPField.Name("RateLimit-Policy")!] != nil)
            for token in tokens { #expect(try await api.verify(token)["code"] as? String == "REVOKED") }
            #expect(try await api.verify(bystander)["active"] as? Bool == true)
            #expect(try await api.send(.post, "/api/tokens/revoke", json: #"{"userId":"a b"}"#).json["revoked"] as? Int == 0)
            // A verifier key may not; a bad body names the field.
            #expect(try await api.send(.post, "/api/tokens/revoke", key: Fixtures.verifierKey, json: #"{"userId":"a b"}"#).status == .forbidden)
            let bad = try await api.send(.post, "/api/tokens/revoke", json: #"{"userId":""}"#)
            #expect(bad.status == .badRequest && bad.fieldErrors["userId"] != nil)
            #expect(try await api.send(.post, "/api/tokens/revoke", json: #"{"user":"a b"}"#).status == .badRequest)
        }
    }

    @Test func theSettingIsReadAsAFlag() throws {
        let base = ["DATABASE_URL": "postgresql://u@localhost/db", "TOKEN_HASH_KEY": String(repeating: "ab", count: 32), "API_KEY": String(repeating: "k", count: 32)]
        #expect(try AppConfiguration(environment: base).allowsEveryScope == false)
        #expect(try AppConfiguration(environment: base.merging(["ALLOW_WILDCARD_ALL_SCOPE": "true"]) { $1 }).allowsEveryScope)
        #expect(throws: ConfigurationError.self) { try AppConfiguration(environment: base.merging(["ALLOW_WILDCARD_ALL_SCOPE": "yes"]) { $1 }) }
    }
}
