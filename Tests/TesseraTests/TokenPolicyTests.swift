import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import PostgresNIO
import Testing
import TokenCrypto

@testable import Tessera

/// Per-token policy: who may verify a token, from where, whether it is paused, what data it carries, and edits.
@Suite("Token policy")
struct TokenPolicyTests {
    /// A second verifier key, so that audiences can tell two verifiers apart.
    static let otherVerifierKey = "test-other-verifier-key-0123456789"

    private func withAPI(_ body: @escaping @Sendable (APIClient) async throws -> Void) async throws {
        var configuration = try Fixtures.configuration()
        configuration.apiKeys = APIKeyRing(Fixtures.apiKeys.credentials + [APIKeyCredential(name: "other", role: .verifier, secret: Self.otherVerifierKey)])
        let resolver = ClientAddressResolver(trustedProxies: [IPNetwork("127.0.0.0/8")!, IPNetwork("::1")!])
        configuration.clientAddresses = resolver
        let app = buildApplication(configuration, repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await app.test(.live) { client in try await body(APIClient(client: client)) }
    }

    private static func create(_ api: APIClient, _ fields: String) async throws -> (token: String, id: String) {
        let created = try await api.send(.post, "/api/tokens", json: #"{"userId":"p","expiresInMinutes":60\#(fields)}"#)
        #expect(created.status == .created, "\(created.text)")
        return (try #require(created.json["token"] as? String), try #require(created.json["id"] as? String))
    }

    private static func verify(_ api: APIClient, _ token: String, key: String = Fixtures.verifierKey, clientIp: String? = nil) async throws -> [String: Any] {
        let ip = clientIp.map { #","clientIp":"\#($0)""# } ?? ""
        let response = try await api.send(.post, "/api/tokens/verify", key: key, json: #"{"token":"\#(token)"\#(ip)}"#)
        #expect(response.status == .ok, "\(response.text)")
        return response.json
    }

    @Test func audiencesNameTheKeysThatMayVerify() async throws {
        try await withAPI { api in
            let (token, _) = try await Self.create(api, #","audiences":["gateway"]"#)
            #expect(try await Self.verify(api, token)["active"] as? Bool == true)
            #expect(try await Self.verify(api, token, key: Self.otherVerifierKey)["code"] as? String == "WRONG_AUDIENCE")
            let forwardAuth = try await api.send(.get, "/api/auth", key: Self.otherVerifierKey, headers: [.authorization: "Bearer \(token)"])
            #expect(forwardAuth.status == .forbidden)
            #expect(forwardAuth.json["type"] as? String == "urn:tessera:problem:token-not-allowed")
            let introspection = try await api.send(
                .post, "/oauth2/introspect", key: Self.otherVerifierKey, headers: [.contentType: "application/x-www-form-urlencoded"], body: "token=\(token)")
            #expect(introspection.text == #"{"active":false}"#)
        }
    }

    @Test func allowedNetworksBindATokenToWhereItsClientIs() async throws {
        try await withAPI { api in
            let (token, _) = try await Self.create(api, #","allowedCidrs":["203.0.113.0/24","2001:db8::/32"]"#)
            #expect(try await Self.verify(api, token, clientIp: "203.0.113.9")["active"] as? Bool == true)
            #expect(try await Self.verify(api, token, clientIp: "2001:db8::1")["active"] as? Bool == true)
            #expect(try await Self.verify(api, token, clientIp: "198.51.100.1")["code"] as? String == "IP_NOT_ALLOWED")
            #expect(try await Self.verify(api, token)["code"] as? String == "IP_NOT_ALLOWED")  // no address known
            // Forward auth uses the address the trusted proxy forwarded.
            func forwardAuth(from address: String?) async throws -> HTTPResponse.Status {
                var headers: HTTPFields = [.authorization: "Bearer \(token)"]
                if let address { headers[HTTPField.Name("X-Forwarded-For")!] = address }
                return try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: headers).status
            }
            #expect(try await forwardAuth(from: "203.0.113.200") == .noContent)
            #expect(try await forwardAuth(from: "198.51.100.1") == .forbidden)
            #expect(try await forwardAuth(from: nil) == .forbidden)
            let bad = try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: #"{"token":"\#(token)","clientIp":"10.0.0.0/8"}"#)
            #expect(bad.status == .badRequest && bad.fieldErrors["clientIp"] != nil)
        }
    }

    @Test func metaIsReturnedByVerificationAndIntrospectionAndNeverInterpreted() async throws {
        try await withAPI { api in
            let (token, id) = try await Self.create(api, #","meta":{"plan":"pro","limits":{"seats":5},"tags":["a",null,true,1.5]}"#)
            let verified = try await Self.verify(api, token)
            #expect((verified["meta"] as? [String: Any])?["plan"] as? String == "pro")
            #expect(((verified["meta"] as? [String: Any])?["limits"] as? [String: Any])?["seats"] as? Int == 5)
            let introspection = try await api.send(
                .post, "/oauth2/introspect", key: Fixtures.verifierKey, headers: [.contentType: "application/x-www-form-urlencoded"], body: "token=\(token)")
            #expect((introspection.json["meta"] as? [String: Any])?["plan"] as? String == "pro")
            let metadata = try await api.send(.get, "/api/tokens/\(id)").json
            #expect((metadata["meta"] as? [String: Any])?["tags"] as? NSArray == ["a", NSNull(), true, 1.5] as NSArray)  // kept as sent
            let listed = try #require(try await api.send(.get, "/api/tokens?userId=p").json["tokens"] as? [[String: Any]])
            #expect((listed.first?["meta"] as? [String: Any])?["plan"] as? String == "pro")
            // A token without meta says nothing of it in its verification.
            let (plain, _) = try await Self.create(api, "")
            #expect(try await Self.verify(api, plain)["meta"] == nil)
        }
    }

    @Test func badPolicyFieldsAreNamed() async throws {
        try await withAPI { api in
            let big = String(repeating: "x", count: 4100)
            for (fields, field) in [
                (#","audiences":["nobody"]"#, "audiences[0]"), (#","audiences":[]"#, "audiences"), (#","allowedCidrs":["10.0.0.0/33"]"#, "allowedCidrs[0]"),
                (#","allowedCidrs":["[::1]:80"]"#, "allowedCidrs[0]"), (#","meta":[1]"#, "meta"), (#","meta":{"x":"\#(big)"}"#, "meta"),
            ] {
                let refused = try await api.send(.post, "/api/tokens", json: #"{"userId":"p","expiresInMinutes":60\#(fields)}"#)
                #expect(refused.status == .badRequest && refused.fieldErrors[field] != nil, "\(fields.prefix(40)): \(refused.text.prefix(200))")
            }
            #expect((try await api.send(.get, "/api/tokens?userId=p").json["tokens"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func usageLimitsCountDownAndPatchResetsThem() async throws {
        try await withAPI { api in
            let (token, id) = try await Self.create(api, #","maxUses":2"#)
            let first = try await Self.verify(api, token)
            #expect(first["active"] as? Bool == true && first["remaining"] as? Int == 1)
            // A refused verification spends nothing: a missing scope leaves the count where it is.
            #expect(try await api.verify(token, requiredScopes: ["nope"])["code"] as? String == "INSUFFICIENT_SCOPE")
            #expect(try await Self.verify(api, token)["remaining"] as? Int == 0)
            #expect(try await Self.verify(api, token)["code"] as? String == "USAGE_EXCEEDED")
            let metadata = try await api.send(.get, "/api/tokens/\(id)").json
            #expect(metadata["maxUses"] as? Int == 2 && metadata["remaining"] as? Int == 0 && metadata["refill"] is NSNull)
            let reset = try await api.send(.patch, "/api/tokens/\(id)", json: #"{"maxUses":3,"refill":{"amount":3,"every":"day"}}"#)
            #expect(reset.status == .ok && reset.json["remaining"] as? Int == 3)
            #expect((reset.json["refill"] as? [String: Any])?["every"] as? String == "day")
            #expect(try await Self.verify(api, token)["remaining"] as? Int == 2)
            let unlimited = try await api.send(.patch, "/api/tokens/\(id)", json: #"{"maxUses":null}"#)
            #expect(unlimited.json["maxUses"] is NSNull && unlimited.json["refill"] is NSNull && unlimited.json["remaining"] is NSNull)
            let free = try await Self.verify(api, token)
            #expect(free["active"] as? Bool == true && free["remaining"] == nil)

            for (fields, field) in [
                (#","maxUses":0"#, "maxUses"), (#","refill":[5]"#, "refill"),
                (#","maxUses":5,"refill":{"amount":5,"every":"week"}"#, "refill.every"), (#","maxUses":5,"refill":{"every":"day"}"#, "refill.amount"),
            ] {
                let refused = try await api.send(.post, "/api/tokens", json: #"{"userId":"p","expiresInMinutes":60\#(fields)}"#)
                #expect(refused.status == .badRequest && refused.fieldErrors[field] != nil, "\(fields): \(refused.text.prefix(200))")
            }
            // A refill alone limits the token to its amount.
            let (plain, plainID) = try await Self.create(api, "")
            let refillAlone = try await api.send(.patch, "/api/tokens/\(plainID)", json: #"{"refill":{"amount":5,"every":"day"}}"#)
            #expect(refillAlone.status == .ok && refillAlone.json["maxUses"] as? Int == 5 && refillAlone.json["remaining"] as? Int == 5)
            #expect(try await Self.verify(api, plain)["remaining"] as? Int == 4)
        }
    }

    @Test func aTokensOwnRateLimitCountsItsVerificationsAndSpendsNoUseWhenSpent() async throws {
        try await withAPI { api in
            let (token, id) = try await Self.create(api, #","rateLimit":"3/60s","maxUses":10"#)
            let (other, _) = try await Self.create(api, #","rateLimit":"3/60s""#)
            for left in [2, 1, 0] {
                let verified = try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: #"{"token":"\#(token)"}"#)
                let limit = try #require(verified.json["rateLimit"] as? [String: Any])
                #expect(verified.json["active"] as? Bool == true && limit["limit"] as? Int == 3 && limit["remaining"] as? Int == left)
                #expect(verified.headers[values: .rateLimitPolicy].contains(#""token";q=3;w=60"#))
                #expect(verified.headers[values: .rateLimit].contains { $0.hasPrefix(#""token";r=\#(left);t="#) })
            }
            let limited = try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: #"{"token":"\#(token)"}"#)
            #expect(limited.status == .ok && limited.json["active"] as? Bool == false && limited.json["code"] as? String == "RATE_LIMITED")
            let limit = try #require(limited.json["rateLimit"] as? [String: Any])
            #expect(limit["remaining"] as? Int == 0 && (limit["retryAfter"] as? Int ?? 0) >= 1)
            #expect(limited.headers[values: .rateLimit].contains { $0.hasPrefix(#""token";r=0;t="#) })
            // Spent for this token only, and with no use spent while limited.
            #expect(try await Self.verify(api, other)["active"] as? Bool == true)
            #expect(try await api.send(.get, "/api/tokens/\(id)").json["remaining"] as? Int == 7)
            let forwardAuth = try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [.authorization: "Bearer \(token)"])
            #expect(forwardAuth.status == .tooManyRequests && forwardAuth.headers[.retryAfter] != nil)
            let introspection = try await api.send(
                .post, "/oauth2/introspect", key: Fixtures.verifierKey, headers: [.contentType: "application/x-www-form-urlencoded"], body: "token=\(token)")
            #expect(introspection.text == #"{"active":false}"#)

            // Raised at once by an edit; lifted by null.
            let raised = try await api.send(.patch, "/api/tokens/\(id)", json: #"{"rateLimit":"100/60s"}"#)
            #expect(raised.status == .ok && raised.json["rateLimit"] as? String == "100/60s")
            #expect(try await Self.verify(api, token)["active"] as? Bool == true)
            #expect(try await api.send(.patch, "/api/tokens/\(id)", json: #"{"rateLimit":null}"#).json["rateLimit"] is NSNull)
            let unlimited = try await Self.verify(api, token)
            #expect(unlimited["active"] as? Bool == true && unlimited["rateLimit"] == nil)
            let listed = try #require(try await api.send(.get, "/api/tokens?userId=p").json["tokens"] as? [[String: Any]])
            #expect(Set(listed.map { $0["rateLimit"] is NSNull ? "none" : $0["rateLimit"] as? String ?? "?" }) == ["none", "3/60s"])

            for value in [#""0/60s""#, #""+5/60s""#, #""5/60""#, "5", #""5/0s""#, #""5/86401s""#, #""10000001/60s""#, #""5/ 60s""#, #""05/60s""#, #""5/60s/1s""#] {
                let refused = try await api.send(.post, "/api/tokens", json: #"{"userId":"p","expiresInMinutes":60,"rateLimit":\#(value)}"#)
                #expect(refused.status == .badRequest && refused.fieldErrors["rateLimit"] != nil, "\(value): \(refused.text.prefix(200))")
                #expect(try await api.send(.patch, "/api/tokens/\(id)", json: #"{"rateLimit":\#(value)}"#).fieldErrors["rateLimit"] != nil)
            }
        }
    }

    @Test func patchEditsPausesNarrowsAndShortensButNeverWidens() async throws {
        try await withAPI { api in
            let (token, id) = try await Self.create(api, #","scopes":["repo:*","ci"],"name":"old""#)
            func patch(_ body: String) async throws -> TestResponse { try await api.send(.patch, "/api/tokens/\(id)", json: body) }

            let paused = try await patch(#"{"enabled":false}"#)
            #expect(paused.status == .ok && paused.json["enabled"] as? Bool == false)
            #expect(try await Self.verify(api, token)["code"] as? String == "DISABLED")
            #expect(try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [.authorization: "Bearer \(token)"]).status == .unauthorized)
            #expect(try await patch(#"{"enabled":true}"#).status == .ok)
            #expect(try await Self.verify(api, token)["active"] as? Bool == true)

            let edited = try await patch(#"{"name":null,"scopes":["repo:read"],"meta":{"k":1},"audiences":["gateway"]}"#)
            #expect(edited.status == .ok)
            #expect(edited.json["name"] is NSNull && edited.json["scopes"] as? [String] == ["repo:read"])
            #expect(try await Self.verify(api, token, key: Self.otherVerifierKey)["code"] as? String == "WRONG_AUDIENCE")
            #expect(try await patch(#"{"audiences":null}"#).json["audiences"] is NSNull)

            // Never wider, never longer; a refused change changes nothing.
            let widened = try await patch(#"{"scopes":["repo:read","ci"]}"#)
            #expect(widened.status == .conflict && widened.fieldErrors["scopes[1]"] != nil)
            let expiresAt = try #require(edited.json["expiresAt"] as? String)
            let later = try await patch(#"{"expiresAt":"2099-01-01T00:00:00Z","name":"x"}"#)
            #expect(later.status == .conflict && later.fieldErrors["expiresAt"] != nil)
            #expect(try await api.send(.get, "/api/tokens/\(id)").json["name"] is NSNull)
            let soon = Date().addingTimeInterval(600).formatted(.iso8601)
            let shortened = try await patch(#"{"expiresAt":"\#(soon)"}"#)
            #expect(shortened.status == .ok && shortened.json["expiresAt"] as? String == soon && soon < expiresAt)

            #expect(try await patch("{}").status == .badRequest)
            #expect(try await patch(#"{"enabled":"no"}"#).fieldErrors["enabled"] != nil)
            #expect(try await api.send(.patch, "/api/tokens/\(UUID())", json: #"{"enabled":false}"#).status == .notFound)
            #expect(try await api.send(.delete, "/api/tokens/\(id)").status == .noContent)
            #expect(try await patch(#"{"enabled":true}"#).status == .conflict)
            let audit = try await api.send(.get, "/api/audit?tokenId=\(id)").json["events"] as? [[String: Any]] ?? []
            #expect(audit.filter { $0["action"] as? String == "token.update" }.count == 5)
        }
    }
}
