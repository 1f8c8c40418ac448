import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import TokenCrypto

@testable import Tessera

/// Forward auth as each proxy calls it (Envoy, Traefik, Caddy, nginx), the rule table, and leak reports.
@Suite("Proxies and leak reports")
struct ProxyContractTests {
    private func withAPI(
        successStatus: HTTPResponse.Status = .noContent, rules: String? = nil, keys: SecretScanningKeys? = nil,
        rateLimits: RateLimitSettings = RateLimitSettings(),
        _ body: @escaping @Sendable (APIClient) async throws -> Void
    ) async throws {
        var configuration = try Fixtures.configuration(rateLimits: rateLimits)
        configuration.forwardAuthSuccessStatus = successStatus
        configuration.forwardAuthRules = try rules.map { try ForwardAuthRules(json: Data($0.utf8)) }
        configuration.secretScanningKeys = keys
        let app = buildApplication(configuration, repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await app.test(.live) { client in try await body(APIClient(client: client)) }
    }

    private static func token(_ api: APIClient, scopes: [String] = ["orders:read"]) async throws -> String {
        try #require(try await api.createToken(userID: "proxy-user", scopes: scopes)["token"] as? String)
    }

    static let rules = """
        [
          {"method": "GET", "path": "/health", "allow": "anonymous"},
          {"path": "/admin/**", "deny": true},
          {"method": "GET", "path": "/orders/*", "scopes": ["orders:read"]},
          {"method": "POST", "path": "/orders", "scopes": ["orders:write"]},
          {"path": "/profile/**", "scopes": []}
        ]
        """

    /// Envoy's ext_authz (HTTP service): the original method, `path_prefix` + the original path and query, the headers
    /// it forwards by default plus `headers_to_add`; only exactly `200` lets the request through.
    @Test func envoySendsTheOriginalMethodAndPathAndGetsExactly200() async throws {
        try await withAPI(successStatus: .ok, rules: Self.rules) { api in
            let token = try await Self.token(api)
            func envoy(_ method: HTTPRequest.Method, _ path: String, token: String?, body: String? = nil) async throws -> TestResponse {
                var headers: HTTPFields = [
                    HTTPField.Name("x-envoy-expected-rq-timeout-ms")!: "250", HTTPField.Name("x-forwarded-proto")!: "https",
                    HTTPField.Name("x-request-id")!: "8b6f3c1e-6a0e-4c55-9f3a-2f1d6b8e0a11",
                    // A client's own copy, which the success answer must overwrite.
                    .authUserID: "admin",
                ]
                if let token { headers[.authorization] = "Bearer \(token)" }
                return try await api.send(method, "/api/auth\(path)", key: Fixtures.verifierKey, headers: headers, body: body)
            }
            let allowed = try await envoy(.get, "/orders/7?expand=items&page=2", token: token)
            #expect(allowed.status == .ok && allowed.text.isEmpty)
            #expect(allowed.headers[.authUserID] == "proxy-user" && allowed.headers[.authScopes] == "orders:read" && allowed.headers[.authTokenID] != nil)
            #expect(allowed.headers[values: .authUserID] == ["proxy-user"])
            // The body Envoy may send is ignored; POST /orders needs orders:write.
            let write = try await envoy(.post, "/orders", token: token, body: #"{"item": 1}"#)
            #expect(write.status == .forbidden && write.headers[.wwwAuthenticate]?.contains("insufficient_scope") == true)
            #expect(try await envoy(.delete, "/orders/7", token: token).status == .forbidden)  // no rule: denied
            #expect(try await envoy(.get, "/admin/users", token: token).status == .forbidden)
            #expect(try await envoy(.get, "/admin", token: token).status == .forbidden)
            #expect(try await envoy(.get, "/orders/7", token: nil).status == .unauthorized)
            // Paths a server might read differently are denied, never matched loosely.
            #expect(try await envoy(.get, "/orders/../admin/x", token: token).status == .forbidden)
            #expect(try await envoy(.get, "/orders/a%2Fb", token: token).status == .forbidden)
            #expect(try await envoy(.get, "/orders/7;jsessionid=1", token: token).status == .forbidden)
            #expect(try await envoy(.get, "/orders/7%5C..%5Cadmin", token: token).status == .forbidden)
            let anonymous = try await envoy(.get, "/health", token: nil)
            #expect(anonymous.status == .ok && anonymous.headers[.authUserID] == "" && anonymous.headers[.authTokenID] == "")
            #expect(try await envoy(.patch, "/profile/me/settings", token: token).status == .ok)
        }
    }

    /// Traefik's ForwardAuth: `GET` to the address with `X-Forwarded-Method`, `-Uri`, `-Host`, `-Proto` and `-For`;
    /// any `2xx` passes. Caddy's forward_auth sends the same two headers that matter.
    @Test func traefikAndCaddySendTheOriginalRequestInForwardedHeaders() async throws {
        try await withAPI(rules: Self.rules) { api in
            let token = try await Self.token(api)
            func traefik(_ method: String, _ uri: String) async throws -> TestResponse {
                try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [
                    .authorization: "Bearer \(token)", .forwardedMethod: method, .forwardedURI: uri,
                    HTTPField.Name("X-Forwarded-Host")!: "shop.example", HTTPField.Name("X-Forwarded-Proto")!: "https",
                    HTTPField.Name("X-Forwarded-For")!: "198.51.100.7",
                ])
            }
            let read = try await traefik("GET", "/orders/7?x=1")
            #expect(read.status == .noContent && read.headers[.authUserID] == "proxy-user")
            #expect(try await traefik("POST", "/orders").status == .forbidden)
            #expect(try await traefik("GET", "/nothing").status == .forbidden)
            // nginx configurations name them X-Original-Method and X-Original-URI.
            let nginx = try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [
                .authorization: "Bearer \(token)", .originalMethod: "GET", .originalURI: "/orders/9",
            ])
            #expect(nginx.status == .noContent)
            // With a rule table, a request that does not say what it is asking about is denied, and so is one that says
            // it twice: nginx passes a client's own X-Forwarded-* on beside the X-Original-* it sets.
            let unknown = try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [.authorization: "Bearer \(token)"])
            #expect(unknown.status == .forbidden && unknown.json["type"] as? String == "urn:tessera:problem:request-not-allowed")
            let twice = try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [
                .authorization: "Bearer \(token)", .originalMethod: "GET", .originalURI: "/nothing", .forwardedMethod: "GET", .forwardedURI: "/orders/9",
            ])
            #expect(twice.status == .forbidden)
            // An anonymous rule still needs a token covering the location's own ?scope=.
            let scoped = try await api.send(.get, "/api/auth?scope=orders:write", key: Fixtures.verifierKey, headers: [.forwardedMethod: "GET", .forwardedURI: "/health"])
            #expect(scoped.status == .unauthorized)
        }
    }

    @Test func withoutRulesEveryMethodAndPathWorksAndScopeQueriesStillDo() async throws {
        try await withAPI { api in
            let token = try await Self.token(api)
            let bearer: HTTPFields = [.authorization: "Bearer \(token)"]
            for method in [HTTPRequest.Method.get, .head, .post, .put, .delete, .patch, .options, .trace] {
                let answer = try await api.send(method, "/api/auth", key: Fixtures.verifierKey, headers: bearer, body: [.get, .head, .trace].contains(method) ? nil : "ignored")
                #expect(answer.status == .noContent, "\(method)")
            }
            #expect(try await api.send(.put, "/api/auth/any/path?unknown=1", key: Fixtures.verifierKey, headers: bearer).status == .noContent)
            #expect(try await api.send(HTTPRequest.Method("PROPFIND")!, "/api/auth/dav/x", key: Fixtures.verifierKey, headers: bearer).status == .noContent)
            #expect(ForwardAuthController.methods.count == 38)
            #expect(try await api.send(.get, "/api/auth?scope=orders:read", key: Fixtures.verifierKey, headers: bearer).status == .noContent)
            #expect(try await api.send(.post, "/api/auth?scope=orders:write", key: Fixtures.verifierKey, headers: bearer).status == .forbidden)
            #expect(try await api.send(.get, "/api/auth?unknown=1", key: Fixtures.verifierKey, headers: bearer).status == .badRequest)
            // A proxy address written with a trailing slash still has its ?scope= read.
            #expect(try await api.send(.get, "/api/auth/?scope=orders:write", key: Fixtures.verifierKey, headers: bearer).status == .forbidden)
            #expect(try await api.send(.get, "/api/auth/?scope=orders:read", key: Fixtures.verifierKey, headers: bearer).status == .noContent)
            // A token without scopes still sends X-Auth-Scopes, empty.
            let bare = try await Self.token(api, scopes: [])
            let answer = try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [.authorization: "Bearer \(bare)", .authScopes: "admin"])
            #expect(answer.status == .noContent && answer.headers[values: .authScopes] == [""])
        }
    }

    @Test func aBadRulesFileStopsStartUpNamingTheRule() throws {
        for (rules, named) in [
            (#"[{"path": "/a", "scopes": ["ok"]}, {"path": "/b/**/c", "deny": true}]"#, "rule 1 (* /b/**/c)"),
            (#"[{"method": "get", "path": "/a", "deny": true}]"#, "rule 0"),
            (#"[{"path": "/a", "scopes": ["bad scope"]}]"#, "rule 0 (* /a) has scope 'bad scope'"),
            (#"[{"path": "/a", "scopes": [], "deny": true}]"#, "exactly one of"),
            (#"[{"path": "/a", "allow": "everyone"}]"#, "rule 0"),
            (#"[{"path": "a", "deny": true}]"#, "starting with /"),
            (#"[{"path": "/a", "deny": true, "note": 1}]"#, "unknown field 'note'"),
            (#"{"path": "/a"}"#, "JSON array"),
        ] {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("rules-\(UUID()).json")
            try Data(rules.utf8).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            var environment = ["DATABASE_URL": "postgresql://u@127.0.0.1/d", "TOKEN_HASH_KEY": String(repeating: "ab", count: 32), "API_KEY": "k".padding(toLength: 24, withPad: "k", startingAt: 0)]
            environment["FORWARD_AUTH_RULES"] = file.path
            #expect {
                try AppConfiguration(environment: environment)
            } throws: { error in
                "\(error)".contains("FORWARD_AUTH_RULES") && "\(error)".contains(named)
            }
        }
        let environment = ["DATABASE_URL": "postgresql://u@127.0.0.1/d", "TOKEN_HASH_KEY": String(repeating: "ab", count: 32), "API_KEY": String(repeating: "k", count: 24)]
        #expect(throws: ConfigurationError.self) { try AppConfiguration(environment: environment.merging(["FORWARD_AUTH_SUCCESS_STATUS": "201"]) { $1 }) }
        #expect(try AppConfiguration(environment: environment.merging(["FORWARD_AUTH_SUCCESS_STATUS": "200"]) { $1 }).forwardAuthSuccessStatus == .ok)
    }

    /// GitHub's secret scanning partner program: a signed array of reported matches, answered with a label each.
    @Test func leakedTokensReportedByGitHubAreRevokedAndLabelled() async throws {
        let signer = P256.Signing.PrivateKey()
        let document = #"{"public_keys": [{"key_identifier": "kid-1", "key": "\#(signer.publicKey.pemRepresentation.replacingOccurrences(of: "\n", with: "\\n"))", "is_current": true}]}"#
        let keys = try SecretScanningKeys(json: Data(document.utf8))
        var limits = RateLimitSettings()
        limits.authFailures = RateLimitPolicy(name: "auth-failures", quota: 5, window: 3_600)  // none back while it runs
        try await withAPI(keys: keys, rateLimits: limits) { api in
            let leaked = try await Self.token(api)
            let revokedBefore = try await api.createToken(userID: "proxy-user")
            #expect(try await api.send(.delete, "/api/tokens/\(revokedBefore["id"] as? String ?? "")").status == .noContent)
            let stranger = AccessToken.generate(prefix: .default).secret  // well formed, but never issued here
            let report = """
                [{"token":"\(leaked)","type":"tessera_token","url":"https://github.com/o/r/blob/abc/config.yml","source":"content"},
                 {"token":"\(revokedBefore["token"] as? String ?? "")","type":"tessera_token","url":"https://example/2","source":"content"},
                 {"token":"\(stranger)","type":"tessera_token","url":"https://example/3","source":"content"},
                 {"token":"not-a-token","type":"tessera_token","url":"https://example/4","source":"content"}]
                """
            func send(_ body: String, signature: String?, keyID: String = "kid-1") async throws -> TestResponse {
                var headers: HTTPFields = [.contentType: "application/json", .githubKeyIdentifier: keyID]
                if let signature { headers[.githubKeySignature] = signature }
                return try await api.send(.post, "/api/secret-scanning/github", key: nil, headers: headers, body: body)
            }
            let signature = try signer.signature(for: Data(report.utf8)).derRepresentation.base64EncodedString()
            let answer = try await send(report, signature: signature)
            #expect(answer.status == .ok, "\(answer.text)")
            let labels = try #require(try JSONSerialization.jsonObject(with: Data(answer.text.utf8)) as? [[String: String]])
            #expect(labels.map { $0["label"] } == ["true_positive", "true_positive", "false_positive", "false_positive"])
            #expect(labels.first?["token_raw"] == leaked && labels.first?["token_type"] == "tessera_token")
            #expect(try await api.verify(leaked)["code"] as? String == "REVOKED")
            let audit = try await api.send(.get, "/api/audit?userId=proxy-user").json["events"] as? [[String: Any]] ?? []
            let revocations = audit.filter { $0["action"] as? String == "token.revoke" && $0["actor"] as? String == "secret-scanning:github" }
            #expect(revocations.count == 1)
            #expect((revocations.first?["details"] as? [String: String])?["url"] == "https://github.com/o/r/blob/abc/config.yml")

            // Unsigned, signed by another key, or changed after signing: refused, each spending the failure budget.
            let other = try P256.Signing.PrivateKey().signature(for: Data(report.utf8)).derRepresentation.base64EncodedString()
            #expect(try await send(report, signature: nil).status == .unauthorized)
            #expect(try await send(report, signature: other).status == .unauthorized)
            #expect(try await send(report + " ", signature: signature).status == .unauthorized)
            #expect(try await send(report, signature: signature, keyID: "kid-2").status == .unauthorized)
            // Those four spent four of the address's five failures: one more, then 429.
            #expect(try await send(report, signature: nil).status == .unauthorized)
            #expect(try await send(report, signature: nil).status == .tooManyRequests)
            #expect(try await send("not json", signature: try signer.signature(for: Data("not json".utf8)).derRepresentation.base64EncodedString()).status == .badRequest)
        }
    }
}
