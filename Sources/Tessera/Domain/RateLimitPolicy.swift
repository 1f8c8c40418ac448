/// A budget of `quota` requests per `window` seconds, all of which may be spent at once.
///
/// It maps directly onto the IETF `RateLimit-Policy` field: `"<name>";q=<quota>;w=<window>`.
public struct RateLimitPolicy: Sendable, Equatable {
    /// The policy's name in `RateLimit-Policy` and `RateLimit`.
    public let name: String
    /// Requests allowed per window (and the largest burst).
    public let quota: Int
    /// The window in seconds.
    public let window: Int
    /// The `RateLimit-Policy` field value, written once: every limited answer carries it.
    let headerValue: String

    /// Creates a policy; `quota` and `window` must be positive.
    public init(name: String, quota: Int, window: Int) {
        precondition(quota > 0 && window > 0, "a rate limit needs a positive quota and window")
        self.name = name
        self.quota = quota
        self.window = window
        self.headerValue = "\"\(name)\";q=\(quota);w=\(window)"
    }

    /// Parses `<quota>/<window>s` (such as `600/60s`), or returns `nil`.
    public init?(name: String, parsing text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let quota = Int(parts[0]), quota > 0, quota <= 10_000_000 else { return nil }
        let windowText = parts[1].hasSuffix("s") ? parts[1].dropLast() : parts[1]
        guard let window = Int(windowText), window > 0, window <= 86_400 else { return nil }
        self.init(name: name, quota: quota, window: window)
    }

    /// `<quota>/<window>s`, as parsed.
    public var text: String { "\(quota)/\(window)s" }
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

/// GCRA's arithmetic for one policy, on a clock of `unitsPerSecond` ticks: every limiter decides with this.
///
/// Each key has a theoretical arrival time (TAT); a request fits when spending it would leave the TAT no further
/// ahead of now than the whole quota's worth of intervals.
struct GCRA: Sendable {
    /// Ticks between requests at the sustained rate.
    let interval: Int64
    /// How far ahead of now the TAT may run: the whole quota's intervals.
    let tolerance: Int64
    let unitsPerSecond: Int64

    init(_ policy: RateLimitPolicy, unitsPerSecond: Int64) {
        self.unitsPerSecond = unitsPerSecond
        // At least one tick: a rate finer than the clock (10,000,000 a second on a microsecond clock) is counted at
        // the clock's finest, never divided by zero.
        self.interval = max(1, Int64(policy.window) * unitsPerSecond / Int64(policy.quota))
        self.tolerance = interval * Int64(policy.quota)
    }

    /// Whether a request at `now` fits a key whose stored TAT is `stored`, and the TAT spending it leaves.
    func admit(stored: Int64?, now: Int64) -> (fits: Bool, spent: Int64) {
        let spent = max(stored ?? now, now) + interval
        return (spent - now <= tolerance, spent)
    }

    /// The decision at `now`, given the TAT in force after it (after spending, when a request was spent).
    func decision(now: Int64, arrival: Int64, allowed: Bool) -> RateLimitDecision {
        let ahead = arrival - now
        return RateLimitDecision(
            allowed: allowed,
            remaining: max(0, Int((tolerance - ahead) / interval)),
            resetSeconds: seconds(ahead),
            retryAfterSeconds: allowed ? 0 : max(1, seconds(arrival + interval - tolerance - now))
        )
    }

    /// Whole seconds, rounded up.
    private func seconds(_ ticks: Int64) -> Int {
        Int((max(0, ticks) + unitsPerSecond - 1) / unitsPerSecond)
    }
}
