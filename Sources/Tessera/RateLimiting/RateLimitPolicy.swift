/// A budget of `quota` requests per `window` seconds, all of which may be spent at once.
///
/// It maps directly onto the IETF `RateLimit-Policy` field: `"<name>";q=<quota>;w=<window>`.
public struct RateLimitPolicy: Sendable, Equatable {
    /// The policy's name in `RateLimit-Policy` and `RateLimit`.
    public var name: String
    /// Requests allowed per window (and the largest burst).
    public var quota: Int
    /// The window in seconds.
    public var window: Int

    /// Creates a policy; `quota` and `window` must be positive.
    public init(name: String, quota: Int, window: Int) {
        precondition(quota > 0 && window > 0, "a rate limit needs a positive quota and window")
        self.name = name
        self.quota = quota
        self.window = window
    }

    /// Parses `<quota>/<window>s` (such as `600/60s`), or returns `nil`.
    public init?(name: String, parsing text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let quota = Int(parts[0]), quota > 0, quota <= 10_000_000 else { return nil }
        let windowText = parts[1].hasSuffix("s") ? parts[1].dropLast() : parts[1]
        guard let window = Int(windowText), window > 0, window <= 86_400 else { return nil }
        self.init(name: name, quota: quota, window: window)
    }

    /// The interval between requests at the sustained rate, in nanoseconds.
    var emissionInterval: Int64 { Int64(window) * 1_000_000_000 / Int64(quota) }

    /// The `RateLimit-Policy` field value.
    var headerValue: String { "\"\(name)\";q=\(quota);w=\(window)" }
}

/// The limiter's answer for one request.
public struct RateLimitDecision: Sendable, Equatable {
    /// Whether the request may proceed.
    public var allowed: Bool
    /// Requests still allowed right now after this one.
    public var remaining: Int
    /// Seconds until the full quota is available again.
    public var resetSeconds: Int
    /// Seconds to wait before retrying, when not allowed.
    public var retryAfterSeconds: Int
}
