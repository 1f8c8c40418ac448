import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Metrics
import Prometheus
import Testing

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
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let token = try #require(try await api.createToken()["token"] as? String)
            _ = try await api.verify(token)
            _ = try await api.verify("tsr_nope")
            #expect(try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: #"{"token":"x"}"#).status == .tooManyRequests)

            let metrics = try await api.send(.get, "/metrics", key: nil)
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(metrics.text.contains(#"tessera_verifications_total{result="ACTIVE"}"#))
            #expect(metrics.text.contains(#"tessera_verifications_total{result="MALFORMED"}"#))
            #expect(metrics.text.contains(#"tessera_rate_limited_total{policy="verify"}"#))
            #expect(metrics.text.contains("http_server_request_duration"))
            #expect(metrics.text.contains(#"http_route="/api/tokens/verify""#))
            #expect(metrics.text.contains("tessera_db_pool_max_connections"))
            #expect(!metrics.text.contains(token))
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

    private static func matches(_ pattern: String, in text: String) -> [String] {
        let expression = try! NSRegularExpression(pattern: pattern)
        return expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
            Range(match.range(at: 1), in: text).map { String(text[$0]) }
        }
    }
}
