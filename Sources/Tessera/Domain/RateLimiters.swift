/// The limiters of a running service: one budget per API key for admin routes and for verification, one per end
/// client behind a trusted proxy for forward auth and introspection, one per client address for failed or
/// missing authentication, and one per token that has a rate limit of its own.
public struct RateLimiters: Sendable {
    /// Admin routes, keyed by API key name.
    public let admin: any RateLimitStore
    /// Verification, keyed by API key name.
    public let verify: any RateLimitStore
    /// Forward auth and introspection, keyed by the end client's address that a trusted proxy forwarded.
    public let endClient: any RateLimitStore
    /// Failed or missing authentication, keyed by client address (IPv6 by /64).
    public let authFailures: any RateLimitStore
    /// Tokens' own rate limits, keyed by token id; each token brings its policy.
    public let tokens: any RateLimitStore

    /// Limiters in process memory.
    public init(_ settings: RateLimitSettings) {
        admin = GCRALimiter(policy: settings.admin, capacity: settings.maximumTrackedKeys)
        verify = GCRALimiter(policy: settings.verify, capacity: settings.maximumTrackedKeys)
        endClient = GCRALimiter(policy: settings.endClient, capacity: settings.maximumTrackedKeys)
        authFailures = GCRALimiter(policy: settings.authFailures, capacity: settings.maximumTrackedKeys)
        tokens = GCRALimiter(policy: TokenPolicy.rateLimitPartition, capacity: settings.maximumTrackedKeys)
    }
}

/// The rate limit settings read from the environment.
public struct RateLimitSettings: Sendable, Equatable {
    /// Most failed authentications a client may make before it is blocked; the issue caps it at 100.
    public static let maximumAuthFailureQuota = 100

    /// Per API key, for the admin routes.
    public var admin = RateLimitPolicy(name: "admin", quota: 600, window: 60)
    /// Per API key, for verification.
    public var verify = RateLimitPolicy(name: "verify", quota: 60_000, window: 60)
    /// Per end-client address forwarded by a trusted proxy, for forward auth and introspection.
    public var endClient = RateLimitPolicy(name: "end-client", quota: 600, window: 60)
    /// Per client address, for failed or missing authentication.
    public var authFailures = RateLimitPolicy(name: "auth-failures", quota: 20, window: 60)
    /// Keys tracked per limiter before the least recently seen is forgotten.
    public var maximumTrackedKeys = 100_000
    /// Whether budgets are shared through PostgreSQL (`RATE_LIMIT_STORE=postgres`) instead of kept in memory.
    public var sharedInPostgres = false

    /// The defaults: 600 admin requests and 60,000 verifications a minute per key; 600 forward-auth or introspection
    /// checks a minute per end client; 20 failed authentications a minute per client.
    public init() {}

    /// Reads `RATE_LIMIT_ADMIN`, `RATE_LIMIT_VERIFY`, `RATE_LIMIT_END_CLIENT`, `RATE_LIMIT_AUTH_FAILURES`
    /// (`<quota>/<seconds>s`) and `RATE_LIMIT_MAX_KEYS`.
    public init(environment value: (String) -> String?) throws {
        func policy(_ variable: String, _ name: String, default fallback: RateLimitPolicy) throws -> RateLimitPolicy {
            guard let text = value(variable) else { return fallback }
            guard let policy = RateLimitPolicy(name: name, parsing: text) else {
                throw ConfigurationError(variable, "must look like 600/60s: a quota of requests per window of seconds")
            }
            return policy
        }
        let defaults = RateLimitSettings()
        admin = try policy("RATE_LIMIT_ADMIN", "admin", default: defaults.admin)
        verify = try policy("RATE_LIMIT_VERIFY", "verify", default: defaults.verify)
        endClient = try policy("RATE_LIMIT_END_CLIENT", "end-client", default: defaults.endClient)
        authFailures = try policy("RATE_LIMIT_AUTH_FAILURES", "auth-failures", default: defaults.authFailures)
        guard authFailures.quota <= Self.maximumAuthFailureQuota else {
            throw ConfigurationError("RATE_LIMIT_AUTH_FAILURES", "may allow at most \(Self.maximumAuthFailureQuota) failures before blocking")
        }
        if let text = value("RATE_LIMIT_STORE") {
            guard let shared = ["memory": false, "postgres": true][text.lowercased()] else {
                throw ConfigurationError("RATE_LIMIT_STORE", "must be memory or postgres")
            }
            sharedInPostgres = shared
        }
        if let text = value("RATE_LIMIT_MAX_KEYS") {
            guard let keys = Int(text), (1_000...10_000_000).contains(keys) else {
                throw ConfigurationError("RATE_LIMIT_MAX_KEYS", "must be a number from 1000 to 10000000")
            }
            maximumTrackedKeys = keys
        }
    }
}
