import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import Testing
import TokenCrypto

@testable import Tessera

/// Rate limits, method and header hygiene, and database outages, through the HTTP API.
@Suite("Abuse resistance")
struct HardeningTests {
    private func withAPI(
        rateLimits: RateLimitSettings = RateLimitSettings(),
        clientAddresses: ClientAddressResolver = ClientAddressResolver(),
        mode: TestingSetup = .router,
        _ body: @escaping @Sendable (APIClient) async throws -> Void
    ) async throws {
        let configuration = try Fixtures.configuration(rateLimits: rateLimits, clientAddresses: clientAddresses)
        let app = buildApplication(configuration, repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await app.test(mode) { client in try await body(APIClient(client: client)) }
    }

    private static func limits(admin: Int = 600, verify: Int = 600, failures: Int = 20) -> RateLimitSettings {
        var settings = RateLimitSettings()
        settings.admin = RateLimitPolicy(name: "admin", quota: admin, window: 60)
        settings.verify = RateLimitPolicy(name: "verify", quota: verify, window: 60)
        settings.authFailures = RateLimitPolicy(name: "auth-failures", quota: failures, window: 60)
        return settings
    }

    /// One bad key every few seconds from behind the same address (a NAT, a proxy on the same host) must not keep
    /// every valid key on that address out.
    @Test func aNeighboursFailuresDoNotLockOutAValidKey() async throws {
        try await withAPI(rateLimits: Self.limits(failures: 3)) { api async throws in
            for _ in 0..<3 { #expect(try await api.send(.get, "/api/tokens?userId=u", key: "wrong-key-wrong-key-1").status == .unauthorized) }
            let blocked = try await api.send(.get, "/api/tokens?userId=u", key: "wrong-key-wrong-key-1")
            #expect(blocked.status == .tooManyRequests)
            #expect(Int(blocked.headers[.retryAfter] ?? "") ?? 0 >= 1)
            #expect(blocked.headers[HTTPField.Name("RateLimit-Policy")!] == #""auth-failures";q=3;w=60"#)
            #expect(blocked.headers[.cacheControl] == "no-store")
            // Missing and unreadable credentials from the address are refused too, before any other work...
            #expect(try await api.send(.get, "/api/tokens?userId=u", key: nil).status == .tooManyRequests)
            let unreadable: HTTPFields = [.authorization: "Digest nonsense"]
            #expect(try await api.send(.get, "/api/tokens?userId=u", key: nil, headers: unreadable).status == .tooManyRequests)
            // ...and a forwarded-for header from an untrusted peer changes nothing...
            let spoofed = try await api.send(
                .get, "/api/tokens?userId=u", key: "wrong-key-wrong-key-1", headers: [HTTPField.Name("X-Forwarded-For")!: "198.51.100.77"])
            #expect(spoofed.status == .tooManyRequests)
            // ...but valid keys are admitted, on every route.
            #expect(try await api.send(.get, "/api/tokens?userId=u").status == .ok)
            let verify = try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: #"{"token":"x"}"#)
            #expect(verify.status == .ok)
            let forwardAuth = try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [.authorization: "Bearer x"])
            #expect(forwardAuth.status == .unauthorized)
            #expect(forwardAuth.json["type"] as? String == "urn:tessera:problem:invalid-token")
        }
    }

    @Test func requestsWithoutAKeyCountAsFailures() async throws {
        try await withAPI(rateLimits: Self.limits(failures: 2)) { api async throws in
            #expect(try await api.send(.get, "/api/tokens?userId=u", key: nil).status == .unauthorized)
            #expect(try await api.send(.get, "/api/tokens?userId=u", key: nil).status == .unauthorized)
            #expect(try await api.send(.get, "/api/tokens?userId=u", key: nil).status == .tooManyRequests)
        }
    }

    @Test func adminAndVerifyBudgetsAreSeparateAndExact() async throws {
        try await withAPI(rateLimits: Self.limits(admin: 3, verify: 5)) { api async throws in
            let first = try await api.send(.get, "/api/tokens?userId=u")
            #expect(first.headers[HTTPField.Name("RateLimit-Policy")!] == #""admin";q=3;w=60"#)
            #expect(first.headers[HTTPField.Name("RateLimit")!]?.hasPrefix(#""admin";r=2;t="#) == true)
            #expect(try await api.send(.get, "/api/tokens?userId=u").status == .ok)
            #expect(try await api.send(.get, "/api/tokens/\(UUID())").status == .notFound)
            let limited = try await api.send(.get, "/api/tokens?userId=u")
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers[.retryAfter] != nil)

            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<6 { statuses.append(try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: Self.unknownTokenBody()).status) }
            #expect(statuses == Array(repeating: .ok, count: 5) + [.tooManyRequests])
        }
    }

    /// A verify body naming a well-formed token that was never issued: it needs a database lookup.
    private static func unknownTokenBody() -> String {
        #"{"token":"\#(AccessToken.generate(prefix: .default).secret)"}"#
    }

    /// End users behind a proxy can send junk tokens; rejecting one as `MALFORMED` takes no database work, so it
    /// must not spend the proxy key's budget that every other user's requests need.
    @Test func malformedTokensDoNotSpendTheKeysBudget() async throws {
        try await withAPI(rateLimits: Self.limits(verify: 3)) { api async throws in
            for junk in ["x", "tsr_nope", "Bearer", String(repeating: "a", count: 200)] {
                let verify = try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: #"{"token":"\#(junk)"}"#)
                #expect(verify.status == .ok && verify.json["code"] as? String == "MALFORMED")
                #expect(verify.headers[HTTPField.Name("RateLimit-Policy")!] == #""verify";q=3;w=60"#)
                #expect(verify.headers[HTTPField.Name("RateLimit")!] == nil)  // nothing was spent
                let forwardAuth = try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [.authorization: "Bearer \(junk)"])
                #expect(forwardAuth.status == .unauthorized)
                let introspection = try await api.send(
                    .post, "/oauth2/introspect", key: Fixtures.verifierKey, headers: [.contentType: "application/x-www-form-urlencoded"], body: "token=\(junk)")
                #expect(introspection.status == .ok && introspection.json["active"] as? Bool == false)
            }
            // The whole budget is still there for well-formed tokens.
            for remaining in [2, 1, 0] {
                let lookup = try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: Self.unknownTokenBody())
                #expect(lookup.status == .ok && lookup.json["code"] as? String == "NOT_FOUND")
                #expect(lookup.headers[HTTPField.Name("RateLimit")!]?.hasPrefix(#""verify";r=\#(remaining);"#) == true)
            }
            #expect(try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: Self.unknownTokenBody()).status == .tooManyRequests)
        }
    }

    /// Behind a trusted proxy, each end client has a forward-auth and introspection budget of its own: one client
    /// spending it does not touch another's, nor the proxy key's.
    @Test func eachEndClientBehindATrustedProxyHasItsOwnBudget() async throws {
        var limits = Self.limits()
        // An hour's window: no unit comes back while the test runs, however loaded the machine.
        limits.verify = RateLimitPolicy(name: "verify", quota: 100, window: 3_600)
        limits.endClient = RateLimitPolicy(name: "end-client", quota: 2, window: 3_600)
        let resolver = ClientAddressResolver(trustedProxies: [IPNetwork("127.0.0.0/8")!, IPNetwork("::1")!])
        try await withAPI(rateLimits: limits, clientAddresses: resolver, mode: .live) { api async throws in
            // Well-formed tokens nobody issued: each lookup the end client is allowed spends the key's budget too.
            let unknown = "Bearer \(AccessToken.generate(prefix: .default).secret)"
            let noisy: HTTPFields = [HTTPField.Name("X-Forwarded-For")!: "198.51.100.1", .authorization: unknown]
            for _ in 0..<2 { #expect(try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: noisy).status == .unauthorized) }
            let refused = try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: noisy)
            #expect(refused.status == .tooManyRequests)
            #expect(refused.headers[HTTPField.Name("RateLimit-Policy")!] == #""end-client";q=2;w=3600"#)
            // Introspection shares the end client's budget.
            let introspection = try await api.send(
                .post, "/oauth2/introspect", key: Fixtures.verifierKey,
                headers: [HTTPField.Name("X-Forwarded-For")!: "198.51.100.1", .contentType: "application/x-www-form-urlencoded"], body: "token=junk")
            #expect(introspection.status == .tooManyRequests)
            // Another end client, and callers that name no end client, are untouched.
            let quiet: HTTPFields = [HTTPField.Name("X-Forwarded-For")!: "198.51.100.2", .authorization: unknown]
            #expect(try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: quiet).status == .unauthorized)
            for _ in 0..<5 {
                #expect(try await api.send(.get, "/api/auth", key: Fixtures.verifierKey, headers: [.authorization: "Bearer junk"]).status == .unauthorized)
            }
            let verify = try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: Self.unknownTokenBody())
            #expect(verify.status == .ok)
            // The key's budget paid for the four lookups made (two of the noisy client's, the quiet one's, this one),
            // not for what the end client's budget refused; malformed tokens cost nothing.
            #expect(verify.headers[HTTPField.Name("RateLimit")!]?.hasPrefix(#""verify";r=96;"#) == true, "\(verify.headers[HTTPField.Name("RateLimit")!] ?? "")")
        }
    }

    @Test func aForbiddenCallerSpendsNoBudgetAndRouteErrorsReportIt() async throws {
        try await withAPI(rateLimits: Self.limits(admin: 1)) { api async throws in
            for _ in 0..<2 {
                let forbidden = try await api.send(.get, "/api/tokens?userId=u", key: Fixtures.verifierKey)
                #expect(forbidden.status == .forbidden)
                #expect(forbidden.headers[HTTPField.Name("RateLimit-Policy")!] == nil)
                #expect(forbidden.headers[HTTPField.Name("RateLimit")!] == nil)
            }
            let unauthenticated = try await api.send(.get, "/api/tokens?userId=u", key: "wrong-key-wrong-key-1")
            #expect(unauthenticated.status == .unauthorized)
            #expect(unauthenticated.headers[HTTPField.Name("RateLimit")!] == nil)
            // The admin's one request is still there, and an error from the route carries the budget too.
            let missing = try await api.send(.get, "/api/tokens/\(UUID())")
            #expect(missing.status == .notFound)
            #expect(missing.headers[HTTPField.Name("RateLimit-Policy")!] == #""admin";q=1;w=60"#)
            #expect(missing.headers[HTTPField.Name("RateLimit")!]?.hasPrefix(#""admin";r=0;t="#) == true)
            #expect(try await api.send(.get, "/api/tokens?userId=u").status == .tooManyRequests)
        }
    }

    @Test func trustedProxiesForwardDistinctClients() async throws {
        let resolver = ClientAddressResolver(trustedProxies: [IPNetwork("127.0.0.0/8")!, IPNetwork("::1")!])
        try await withAPI(rateLimits: Self.limits(failures: 1), clientAddresses: resolver, mode: .live) { api async throws in
            let first: HTTPFields = [HTTPField.Name("X-Forwarded-For")!: "198.51.100.1"]
            let second: HTTPFields = [HTTPField.Name("X-Forwarded-For")!: "198.51.100.2"]
            #expect(try await api.send(.get, "/api/tokens?userId=u", key: "wrong-key-wrong-key-1", headers: first).status == .unauthorized)
            #expect(try await api.send(.get, "/api/tokens?userId=u", key: "wrong-key-wrong-key-1", headers: first).status == .tooManyRequests)
            #expect(try await api.send(.get, "/api/tokens?userId=u", key: "wrong-key-wrong-key-1", headers: second).status == .unauthorized)
            #expect(try await api.send(.get, "/api/tokens?userId=u", headers: first).status == .ok)
        }
    }

    @Test func wrongMethodIs405WithAllow() async throws {
        try await withAPI { api in
            for (method, path, allow) in [
                (HTTPRequest.Method.post, "/healthz", "GET"),
                (.put, "/api/tokens/\(UUID())", "DELETE, GET, PATCH"),
                (.get, "/api/tokens/verify", "POST"),
                (.delete, "/api/tokens", "GET, POST"),
                (.get, "/api/tokens/revoke", "POST"),  // the literal route, not /api/tokens/{id}
            ] {
                let response = try await api.send(method, path)
                #expect(response.status == .methodNotAllowed, "\(method) \(path)")
                #expect(response.headers[.allow] == allow)
                #expect(response.headers[.contentType] == "application/problem+json")
            }
            #expect(try await api.send(.get, "/nowhere").status == .notFound)
        }
    }

    /// A repeated field is read as all its values joined, as HTTP defines it, never as its first value alone: two
    /// keys are not a key, two media types are not JSON, two request ids are not adopted.
    @Test func repeatedFieldsAreReadWhole() async throws {
        let apiKey = HTTPField.Name.apiKey
        try await withAPI { api in
            var twoKeys = HTTPFields()
            twoKeys.append(HTTPField(name: apiKey, value: Fixtures.adminKey))
            twoKeys.append(HTTPField(name: apiKey, value: Fixtures.adminKey))
            let refused = try await api.send(.get, "/api/tokens?userId=u", key: nil, headers: twoKeys)
            #expect(refused.status == .unauthorized)

            var twoTypes = HTTPFields()
            twoTypes.append(HTTPField(name: .contentType, value: "application/json"))
            twoTypes.append(HTTPField(name: .contentType, value: "application/json"))
            let verify = try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: #"{"token":"x"}"#, headers: twoTypes)
            #expect(verify.status == .unsupportedMediaType)

            let requestID = HTTPField.Name.requestID
            var twoIDs = HTTPFields()
            twoIDs.append(HTTPField(name: requestID, value: "trace-1"))
            twoIDs.append(HTTPField(name: requestID, value: "trace-2"))
            let health = try await api.send(.get, "/healthz", headers: twoIDs)
            #expect(health.headers[requestID]?.isEmpty == false)  // replaced by an id of its own, not dropped
            #expect(!["trace-1", "trace-2", "trace-1, trace-2"].contains(health.headers[requestID] ?? ""))
        }
    }

    @Test func aSaneCallerRequestIdIsAdoptedAndOthersReplaced() async throws {
        try await withAPI { api in
            let requestID = HTTPField.Name("X-Request-Id")!
            let adopted = try await api.send(.get, "/healthz", headers: [requestID: "trace-42.a:b_c"])
            #expect(adopted.headers[requestID] == "trace-42.a:b_c")
            let replaced = try await api.send(.get, "/api/tokens?userId=u", key: nil, headers: [requestID: "evil\u{1b}[31m id"])
            #expect(replaced.headers[requestID] != nil)
            #expect(replaced.headers[requestID] != "evil\u{1b}[31m id")
            #expect(replaced.json["requestId"] as? String == replaced.headers[requestID])
        }
    }

    /// A shared limiter that cannot reach PostgreSQL cannot count, so it must not wave requests through (or answer
    /// `500`): every route it guards answers `503` with `Retry-After`, failed authentications included.
    @Test func aLimiterThatCannotCountAnswers503() async throws {
        let url = try DatabaseURL("postgresql://tessera@127.0.0.1:1/tessera?sslmode=disable")
        var clientConfiguration = url.clientConfiguration
        clientConfiguration.options.connectTimeout = .seconds(1)
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: Fixtures.logger)
        let limiters = RateLimiters(RateLimitSettings(), client: client, timeout: .seconds(1))
        let app = buildApplication(
            try Fixtures.configuration(), repository: MemoryTokenRepository(), services: [client], rateLimiters: limiters, logger: Fixtures.logger)
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let unknownToken = #"{"token":"\#(AccessToken.generate(prefix: .default).secret)"}"#
            for response in [
                try await api.send(.get, "/api/tokens?userId=u"),
                try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: unknownToken),
                try await api.send(.get, "/api/tokens?userId=u", key: "wrong-key-wrong-key-1"),
            ] {
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] != nil)
                #expect(response.json["type"] as? String == "urn:tessera:problem:database-unavailable")
            }
        }
    }

    @Test func withPostgresDownDatabaseRoutesAnswer503QuicklyAndHealthStaysUp() async throws {
        // Nothing listens on port 1: every connection attempt is refused.
        let url = try DatabaseURL("postgresql://tessera@127.0.0.1:1/tessera?sslmode=disable")
        var clientConfiguration = url.clientConfiguration
        clientConfiguration.options.connectTimeout = .seconds(1)
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: Fixtures.logger)
        let migrator = Migrator(client: client, migrations: [])
        let repository = PostgresTokenRepository(client: client, timeout: .seconds(2))
        let app = buildApplication(try Fixtures.configuration(), repository: repository, services: [client], logger: Fixtures.logger) { logger in
            (try? await withDeadline(.seconds(2), "readiness") { try await migrator.checkSchemaIsCurrent(logger: logger) }) != nil
        }
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let started = ContinuousClock.now
            let create = try await api.send(.post, "/api/tokens", json: #"{"userId":"u","expiresInMinutes":5}"#)
            #expect(create.status == .serviceUnavailable)
            #expect(create.headers[.retryAfter] != nil)
            #expect(create.headers[.contentType] == "application/problem+json")
            #expect(ContinuousClock.now - started < .seconds(5))
            let verify = try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: #"{"token":"tsr_x"}"#)
            #expect(verify.status == .ok)  // malformed tokens never reach the database
            #expect(try await api.send(.get, "/healthz").status == .ok)
            #expect(try await api.send(.get, "/readyz").status == .serviceUnavailable)
        }
    }
}
