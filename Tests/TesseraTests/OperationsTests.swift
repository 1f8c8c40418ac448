import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Metrics
import Prometheus
import Testing
import TokenCrypto

@testable import Tessera

/// One Prometheus registry for the whole test process: `MetricsSystem` can be bootstrapped only once.
enum TestMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

@Suite("Operations and the management page")
struct OperationsTests {
    @Test func metricsCountRequestsVerificationsAndRateLimits() async throws {
        let registry = TestMetrics.registry
        var limits = RateLimitSettings()
        limits.verify = RateLimitPolicy(name: "verify", quota: 2, window: 60)
        let app = buildApplication(
            try Fixtures.configuration(rateLimits: limits), repository: MemoryTokenRepository(), metricsRegistry: registry, logger: Fixtures.logger)
        // Every counter exists from start-up at 0 and the registry is the process's, so each must rise, not just appear.
        let counted = [
            #"tessera_verifications_total{result="ACTIVE"}"#, #"tessera_verifications_total{result="MALFORMED"}"#,
            #"tessera_verifications_total{result="NOT_FOUND"}"#, #"tessera_rate_limited_total{policy="verify"}"#,
        ]
        let before = counted.map { Self.count($0, in: registry) }
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let token = try #require(try await api.createToken()["token"] as? String)
            _ = try await api.verify(token)
            _ = try await api.verify("tsr_nope")  // malformed: spends nothing
            _ = try await api.verify(AccessToken.generate(prefix: .default).secret)
            let overBudget = try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: #"{"token":"\#(AccessToken.generate(prefix: .default).secret)"}"#)
            #expect(overBudget.status == .tooManyRequests)

            let metrics = try await api.send(.get, "/metrics", key: nil)
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            for (name, earlier) in zip(counted, before) { #expect(Self.count(name, in: registry) >= earlier + 1, "\(name)") }
            #expect(metrics.text.contains("http_server_request_duration"))
            // Counted outside the problem middleware: a refusal is counted with the status the client got.
            let refused = #"hb_requests{http_route="/api/tokens/verify",http_request_method="POST",http_response_status_code="429"}"#
            #expect(metrics.text.contains(refused))
            #expect(metrics.text.contains("tessera_db_pool_max_connections"))
            #expect(!metrics.text.contains(token))
        }
    }

    @Test func metricsCanRequireABearerKey() async throws {
        var configuration = try Fixtures.configuration()
        configuration.metricsKey = "metrics-key-0123456789"
        let app = buildApplication(configuration, repository: MemoryTokenRepository(), metricsRegistry: TestMetrics.registry, logger: Fixtures.logger)
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            for authorization in [nil, "Bearer wrong-key-0123456789", "Basic bWV0cmljcy1rZXktMDEyMzQ1Njc4OQ==", "Bearer metrics-key-012345678"] {
                let refused = try await api.send(.get, "/metrics", key: nil, headers: authorization.map { [.authorization: $0] } ?? [:])
                #expect(refused.status == .unauthorized, "\(authorization ?? "no header")")
                #expect(refused.headers[.wwwAuthenticate] == #"Bearer realm="tessera-metrics""#)
                #expect(!refused.text.contains("tessera_"))
            }
            // An API key is not the metrics key.
            #expect(try await api.send(.get, "/metrics", key: Fixtures.adminKey).status == .unauthorized)
            let allowed = try await api.send(.get, "/metrics", key: nil, headers: [.authorization: "Bearer metrics-key-0123456789"])
            #expect(allowed.status == .ok && allowed.text.contains("tessera_"))
        }
    }

    /// A route and method of its own, so that the process-wide registry's series for them are this test's alone;
    /// counts are compared with their values before, so the test can run again in the same process.
    @Test(.timeLimit(.minutes(1))) func requestMetricsCountTimeAndTrackEachRequest() async throws {
        let registry = TestMetrics.registry
        let report = HTTPRequest.Method("REPORT")!
        let entered = AsyncStream.makeStream(of: Void.self)
        let release = AsyncStream.makeStream(of: Void.self)
        let router = Router()
        router.add(middleware: RequestMetricsMiddleware())
        router.on("/metered/{id}", method: report) { _, context in
            switch try context.parameters.require("id") {
            case "wait":
                entered.continuation.yield()
                for await _ in release.stream { break }
            case "fail":
                throw HTTPError(.conflict)
            default:
                break
            }
            return "done"
        }
        let labels = #"http_route="/metered/{id}",http_request_method="REPORT""#
        let answered = #"hb_requests{\#(labels),http_response_status_code="200"}"#
        let failed = #"hb_requests{\#(labels),http_response_status_code="409"}"#
        let timed = #"http_server_request_duration_count{\#(labels),http_response_status_code="200"}"#
        let unmatched = #"hb_requests{http_route="NotFound",http_request_method="REPORT",http_response_status_code="404"}"#
        let active = #"http_server_active_requests{http_request_method="REPORT"}"#
        let before = [answered, failed, timed, unmatched].map { Self.count($0, in: registry) }
        try await Application(router: router).test(.router) { client in
            for _ in 0..<2 {
                let answer = try await client.execute(uri: "/metered/1", method: report)
                #expect(answer.status == .ok)
            }
            let failure = try await client.execute(uri: "/metered/fail", method: report)
            #expect(failure.status == .conflict)
            let unknown = try await client.execute(uri: "/unmetered", method: report)
            #expect(unknown.status == .notFound)
            let after = [answered, failed, timed, unmatched].map { Self.count($0, in: registry) }
            #expect(zip(after, before).map { $0 - $1 } == [2, 1, 2, 1])

            // The gauge counts a request while its handler runs, and not after.
            async let waiting = client.execute(uri: "/metered/wait", method: report)
            for await _ in entered.stream { break }
            #expect(Self.sample(active, in: registry) == "1.0")
            release.continuation.yield()
            #expect(try await waiting.status == .ok)
            #expect(Self.sample(active, in: registry) == "0.0")
        }
    }

    @Test func healthAndReadinessNeedNoKey() async throws {
        let app = buildApplication(try Fixtures.configuration(), repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await app.test(.router) { client async throws in
            let api = APIClient(client: client)
            #expect(try await api.send(.get, "/healthz", key: nil).json["status"] as? String == "ok")
            #expect(try await api.send(.get, "/readyz", key: nil).json["status"] as? String == "ready")
        }
    }

    @Test func theManagementPageIsServedWithItsOwnPolicyAndLabelsEveryControl() async throws {
        let app = buildApplication(try Fixtures.configuration(), repository: MemoryTokenRepository(), logger: Fixtures.logger)
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let page = try await api.send(.get, "/", key: nil)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let policy = try #require(page.headers[.contentSecurityPolicy])
            #expect(policy.contains("script-src 'self'") && policy.contains("default-src 'none'") && !policy.contains("unsafe"))
            #expect(try await api.send(.get, "/app.js", key: nil).headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(try await api.send(.get, "/app.css", key: nil).status == .ok)
            #expect(try await api.send(.get, "/../Package.swift", key: nil).status == .notFound)

            // No external assets, no inline script or style.
            #expect(!page.text.contains("http://") && !page.text.contains("https://"))
            #expect(!page.text.contains("<script>") && !page.text.contains("style=") && !page.text.contains("onclick"))
            // Every input and select has a label pointing at it.
            let ids = Self.matches(#"<(?:input|select)[^>]*\bid="([^"]+)""#, in: page.text)
            let labelled = Set(Self.matches(#"<label[^>]*\bfor="([^"]+)""#, in: page.text))
            #expect(!ids.isEmpty)
            #expect(Set(ids).isSubset(of: labelled), "unlabelled: \(Set(ids).subtracting(labelled))")
            // The script never stores the key.
            let script = try await api.send(.get, "/app.js", key: nil).text
            #expect(!script.contains("localStorage") && !script.contains("sessionStorage") && !script.contains("document.cookie"))
        }
    }

    /// The value of the counter named exactly `name`, 0 before its first count.
    private static func count(_ name: String, in registry: PrometheusCollectorRegistry) -> Int {
        sample(name, in: registry).flatMap { Int($0) } ?? 0
    }

    /// The value of the series named exactly `name` in the registry's text, if it has one.
    private static func sample(_ name: String, in registry: PrometheusCollectorRegistry) -> String? {
        String(decoding: registry.emitToBuffer(), as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix(name + " ") }.map { String($0.dropFirst(name.count + 1)) }
    }

    private static func matches(_ pattern: String, in text: String) -> [String] {
        let expression = try! NSRegularExpression(pattern: pattern)
        return expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
            Range(match.range(at: 1), in: text).map { String(text[$0]) }
        }
    }
}
