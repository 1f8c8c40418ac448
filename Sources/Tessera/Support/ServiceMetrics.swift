import Metrics

/// The service's own metrics, beyond Hummingbird's per-route request counters and latency histograms.
///
/// They are created when the application is built, through whatever metrics backend was bootstrapped then
/// (Prometheus in `tessera serve`; none in most tests).
struct ServiceMetrics: Sendable {
    private let verifications: [String: Counter]
    private let rateLimited: [String: Counter]
    private let authenticationsSucceeded = Counter(label: "tessera_authentications_total", dimensions: [("result", "success")])
    private let authenticationsFailed = Counter(label: "tessera_authentications_total", dimensions: [("result", "failure")])
    /// Database operations that failed because PostgreSQL could not be reached in time.
    let databaseUnavailable: Counter

    init(rateLimitPolicies: [String], databasePoolSize: Int) {
        verifications = Dictionary(
            uniqueKeysWithValues: Verification.codes.map { code in
                (code, Counter(label: "tessera_verifications_total", dimensions: [("result", code)]))
            }
        )
        rateLimited = Dictionary(
            uniqueKeysWithValues: rateLimitPolicies.map { ($0, Counter(label: "tessera_rate_limited_total", dimensions: [("policy", $0)])) }
        )
        databaseUnavailable = Counter(label: "tessera_db_unavailable_total")
        Gauge(label: "tessera_db_pool_max_connections").record(databasePoolSize)
    }

    /// Counts one verification outcome (`ACTIVE` or an inactive code), whichever endpoint asked.
    func recordVerification(_ verification: Verification) {
        verifications[verification.code]?.increment()
    }

    /// Counts one API key authentication, accepted or not.
    func recordAuthentication(succeeded: Bool) {
        (succeeded ? authenticationsSucceeded : authenticationsFailed).increment()
    }

    /// Counts one request refused by the limiter named `policy`.
    func recordRateLimited(policy: String) {
        rateLimited[policy]?.increment()
    }
}
