import Foundation
import Testing

@testable import Tessera

@Suite("Rate limiter")
struct RateLimiterTests {
    private let second: Int64 = 1_000_000_000

    @Test(arguments: [1, 5, 20, 100])
    func aBurstOfBPlusOneGetsExactlyBSuccesses(budget: Int) {
        let limiter = GCRALimiter(policy: RateLimitPolicy(name: "t", quota: budget, window: 60), capacity: 10)
        let now: Int64 = 1_000 * second
        let allowed = (0...budget).filter { _ in limiter.acquire("caller", now: now).allowed }.count
        #expect(allowed == budget)
    }

    @Test func theBudgetRefillsAtTheSustainedRate() {
        let limiter = GCRALimiter(policy: RateLimitPolicy(name: "t", quota: 10, window: 10), capacity: 10)
        let start: Int64 = 50 * second
        for _ in 0..<10 { #expect(limiter.acquire("k", now: start).allowed) }
        let refused = limiter.acquire("k", now: start)
        #expect(!refused.allowed)
        #expect(refused.retryAfterSeconds == 1)
        #expect(!limiter.acquire("k", now: start + second / 2).allowed)
        #expect(limiter.acquire("k", now: start + second).allowed)
        #expect(!limiter.acquire("k", now: start + second).allowed)
    }

    @Test func remainingAndResetDescribeTheBudget() {
        let limiter = GCRALimiter(policy: RateLimitPolicy(name: "t", quota: 4, window: 60), capacity: 10)
        let now: Int64 = 100 * second
        #expect(limiter.acquire("k", now: now).remaining == 3)
        #expect(limiter.check("k", now: now).remaining == 3)
        let second = limiter.acquire("k", now: now)
        #expect(second.remaining == 2)
        #expect(second.resetSeconds == 30)
    }

    @Test func aRateFinerThanTheClockIsCountedAtItsFinestTick() {
        // 10,000,000 a second on PostgreSQL's microsecond clock: an interval below one tick, once a division by zero.
        let gcra = GCRA(RateLimitPolicy(name: "t", quota: 10_000_000, window: 1), unitsPerSecond: 1_000_000)
        #expect(gcra.interval == 1)
        let (fits, spent) = gcra.admit(stored: nil, now: 5_000_000)
        #expect(fits && gcra.decision(now: 5_000_000, arrival: spent, allowed: true).remaining == 9_999_999)
        // The shared store counts in nanoseconds, where that rate is exact.
        #expect(GCRA(RateLimitPolicy(name: "t", quota: 10_000_000, window: 1), unitsPerSecond: 1_000_000_000).interval == 100)
    }

    @Test func keysHaveSeparateBudgets() {
        let limiter = GCRALimiter(policy: RateLimitPolicy(name: "t", quota: 1, window: 60), capacity: 10)
        #expect(limiter.acquire("a", now: 0).allowed)
        #expect(!limiter.acquire("a", now: 0).allowed)
        #expect(limiter.acquire("b", now: 0).allowed)
    }

    @Test func aMillionDistinctKeysStayWithinTheCap() {
        let capacity = 50_000
        let limiter = GCRALimiter(policy: RateLimitPolicy(name: "t", quota: 1, window: 60), capacity: capacity)
        var peak = 0
        for index in 0..<1_000_000 {
            _ = limiter.acquire("client-\(index)", now: Int64(index))
            if index % 10_000 == 0 { peak = max(peak, limiter.trackedKeys) }
        }
        peak = max(peak, limiter.trackedKeys)
        #expect(peak == capacity)
        // The most recent keys are still limited; the least recently seen were forgotten.
        #expect(!limiter.acquire("client-999999", now: 1_000_000).allowed)
        #expect(limiter.acquire("client-0", now: 1_000_000).allowed)
    }

    @Test func recentlySeenKeysSurviveEviction() {
        let limiter = GCRALimiter(policy: RateLimitPolicy(name: "t", quota: 1, window: 3600), capacity: 3)
        #expect(limiter.acquire("victim", now: 0).allowed)
        for index in 0..<10 {
            _ = limiter.acquire("noise-\(index)", now: 1)
            _ = limiter.check("victim", now: 1)  // touching the key keeps it recent
        }
        #expect(limiter.trackedKeys == 3)
        #expect(!limiter.acquire("victim", now: 2).allowed)
        // Eviction did happen around it: the oldest noise key was forgotten and has its full budget again.
        #expect(limiter.acquire("noise-0", now: 2).allowed)
    }

    @Test func policiesParseFromTheEnvironmentForm() {
        #expect(RateLimitPolicy(name: "x", parsing: "600/60s") == RateLimitPolicy(name: "x", quota: 600, window: 60))
        #expect(RateLimitPolicy(name: "x", parsing: "20/60") == RateLimitPolicy(name: "x", quota: 20, window: 60))
        for bad in ["", "0/60s", "10/0s", "ten/60s", "10", "10/60m"] { #expect(RateLimitPolicy(name: "x", parsing: bad) == nil) }
        #expect(throws: ConfigurationError.self) { try RateLimitSettings(environment: { $0 == "RATE_LIMIT_AUTH_FAILURES" ? "101/60s" : nil }) }
    }
}

@Suite("Client address")
struct ClientAddressTests {
    private let resolver = ClientAddressResolver(trustedProxies: [IPNetwork("10.0.0.0/8")!, IPNetwork("fd00::/8")!])

    @Test func withoutTrustedProxiesThePeerIsTheClient() {
        #expect(ClientAddressResolver().clientAddress(peer: "203.0.113.9", forwardedFor: ["198.51.100.1"]) == "203.0.113.9")
    }

    @Test func anUntrustedPeersForwardedForIsIgnored() {
        #expect(resolver.clientAddress(peer: "203.0.113.9", forwardedFor: ["10.1.1.1"]) == "203.0.113.9")
    }

    @Test func theRightmostUntrustedHopIsTheClient() {
        let address = resolver.clientAddress(peer: "10.0.0.2", forwardedFor: ["1.1.1.1, 198.51.100.7", "10.0.0.5"])
        #expect(address == "198.51.100.7")
        #expect(resolver.clientAddress(peer: "fd00::1", forwardedFor: ["2001:db8::5"]) == "2001:db8::5")
        #expect(resolver.clientAddress(peer: "10.0.0.2", forwardedFor: ["10.0.0.9"]) == "10.0.0.9")
        #expect(resolver.clientAddress(peer: "10.0.0.2", forwardedFor: []) == "10.0.0.2")
    }

    @Test func onlyAnAddressInForwardedForBecomesTheClient() {
        for hop in ["evil.example", "unknown", "1.2.3", "198.51.100.7 OR 1=1", String(repeating: "1", count: 5_000), "_hidden"] {
            #expect(resolver.clientAddress(peer: "10.0.0.2", forwardedFor: [hop]) == "10.0.0.2", "\(hop.prefix(20))")
        }
        #expect(resolver.clientAddress(peer: "10.0.0.2", forwardedFor: ["[2001:db8::5]:443"]) == "2001:db8::5")
        #expect(resolver.clientAddress(peer: "10.0.0.2", forwardedFor: ["198.51.100.7:8080"]) == "198.51.100.7")
    }

    @Test func networksMatchByPrefix() {
        let network = IPNetwork("192.168.16.0/20")!
        #expect(network.contains(IPNetwork.parseAddress("192.168.31.255")!))
        #expect(!network.contains(IPNetwork.parseAddress("192.168.32.0")!))
        #expect(!network.contains(IPNetwork.parseAddress("::1")!))
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("example.com") == nil)
        #expect(throws: ConfigurationError.self) { try ClientAddressResolver.parse("10.0.0.0/8, nonsense") }
    }

    @Test func ipv6ClientsShareTheirSlash64Budget() {
        #expect(ClientAddressResolver.limiterKey(for: "2001:db8:1:2::1") == ClientAddressResolver.limiterKey(for: "2001:db8:1:2:ffff::9"))
        #expect(ClientAddressResolver.limiterKey(for: "2001:db8:1:2::1") != ClientAddressResolver.limiterKey(for: "2001:db8:1:3::1"))
        #expect(ClientAddressResolver.limiterKey(for: "203.0.113.9") == "203.0.113.9")
        #expect(ClientAddressResolver.limiterKey(for: "::ffff:203.0.113.9") == "203.0.113.9")
        #expect(ClientAddressResolver.limiterKey(for: "2001:db8:1:2::1") == "2001:db8:1:2::/64")
    }

    @Test(arguments: [
        ("0.0.0.0", true), ("203.0.113.9", true), ("255.255.255.255", true), ("10.0.0.1", true),
        ("010.0.0.1", false), ("256.0.0.1", false), ("1.2.3", false), ("1.2.3.4.5", false), ("1.2.3.", false),
        (".1.2.3", false), ("1..2.3", false), ("1.2.3.4:80", false), ("::ffff:1.2.3.4", false), ("1.2.3.1000", false), ("", false),
    ])
    func canonicalIPv4AddressesAreTheirOwnLimiterKey(address: String, canonical: Bool) {
        #expect(ClientAddressResolver.isCanonicalIPv4(address) == canonical)
        #expect(ClientAddressResolver.limiterKey(for: address) == ClientAddressResolver.normalisedLimiterKey(for: address))
        if canonical { #expect(ClientAddressResolver.limiterKey(for: address) == address) }
    }

    @Test func forwardedHopsWithPortsAndBracketsAreNormalised() {
        #expect(resolver.clientAddress(peer: "10.0.0.2", forwardedFor: ["198.51.100.7:5678"]) == "198.51.100.7")
        #expect(resolver.clientAddress(peer: "10.0.0.2", forwardedFor: ["[2001:db8::5]:443"]) == "2001:db8::5")
        #expect(resolver.clientAddress(peer: "::ffff:10.0.0.2", forwardedFor: ["198.51.100.8"]) == "198.51.100.8")
    }
}

@Suite("Shared rate limits in PostgreSQL")
struct PostgresRateLimitStoreTests {
    @Test func checkAndSpendIsOneDecisionUnderConcurrency() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let store = PostgresRateLimitStore(policy: RateLimitPolicy(name: "auth-failures", quota: 5, window: 60), client: client)
            let key = "198.51.100.\(Int.random(in: 1...250))"
            let allowed = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<40 { group.addTask { try await store.acquire(key, logger: Fixtures.logger).allowed } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(allowed == 5)
            // What the table holds for a key is its fixed-length digest, never the key itself.
            let rows = try await client.query("SELECT key FROM rate_limits WHERE policy = 'auth-failures'", logger: Fixtures.logger)
            var stored: [String] = []
            for try await text in rows.decode(String.self) { stored.append(text) }
            #expect(stored.contains(PostgresRateLimitStore.storedKey(key)))
            #expect(!stored.contains { $0.contains(key) })
            #expect(stored.allSatisfy { $0.utf8.count == 64 })
        }
    }
}
