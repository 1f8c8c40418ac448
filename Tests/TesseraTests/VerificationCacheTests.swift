import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization
import Testing
import TokenCrypto

@testable import Tessera

@Suite("Verification cache")
struct VerificationCacheTests {
    private let caller = Caller(name: "admin", role: .admin)

    private func record() -> TokenRecord {
        TokenRecord(
            id: UUID(), userID: "u", scopes: [], digest: TokenDigest(bytes: [1], keyID: 1), displayPrefix: "tsr_abcd", name: nil,
            createdAtMicroseconds: 0, expiresAt: Date().addingTimeInterval(60), revokedAt: nil, lastUsedAt: nil, createdBy: "admin")
    }

    @Test func itServesOnlyWhileItsFeedIsCurrent() async throws {
        let cache = VerificationCache(maximumStaleness: .milliseconds(100))
        let entry = record()
        cache.store(entry, digest: [1], ticket: cache.ticket())
        #expect(cache.record(for: [1]) == nil)  // nothing delivered yet: nothing stored or served
        #expect(!cache.isServing)
        cache.changesDelivered(through: .now)
        cache.store(entry, digest: [1], ticket: cache.ticket())
        #expect(cache.record(for: [1]) == entry)
        #expect(cache.isServing)
        // No delivery for longer than the bound: bypassed, though the entry is still held.
        try await Task.sleep(for: .milliseconds(150))
        #expect(!cache.isServing)
        #expect(cache.record(for: [1]) == nil)
        #expect(cache.count == 1)
        cache.changesDelivered(through: .now)
        #expect(cache.record(for: [1]) == entry)
        // Changes missed: it starts empty, and serves again only after the next delivery.
        cache.changesMissed()
        #expect(cache.count == 0)
        #expect(!cache.isServing)
        cache.changesDelivered(through: .now)
        #expect(cache.isServing)
        #expect(cache.record(for: [1]) == nil)
    }

    @Test func aLookupThatRacedAnInvalidationDoesNotStoreItsStaleResult() {
        let cache = VerificationCache(maximumStaleness: .seconds(3600))
        cache.changesDelivered(through: .now)
        let entry = record()
        let ticket = cache.ticket()  // a lookup starts...
        cache.invalidate(tokenID: entry.id)  // ...the token is revoked meanwhile...
        cache.store(entry, digest: [1], ticket: ticket)  // ...and the lookup's stale answer is dropped.
        #expect(cache.record(for: [1]) == nil)
        #expect(cache.count == 0)
        // A lookup begun after the invalidation stores what it read.
        cache.store(entry, digest: [1], ticket: cache.ticket())
        #expect(cache.record(for: [1]) == entry)
    }

    @Test func entriesExpireAndTheCapacityHolds() async throws {
        let cache = VerificationCache(timeToLive: .milliseconds(200), capacity: 3, maximumStaleness: .seconds(3600))
        cache.changesDelivered(through: .now)
        let records = (0..<10).map { _ in record() }
        for (index, entry) in records.enumerated() { cache.store(entry, digest: [UInt8(index)], ticket: cache.ticket()) }
        #expect(cache.count == 3)
        // While fresh, the newest entry is served, and so are exactly two others.
        #expect(cache.record(for: [9]) == records[9])
        #expect((0..<10).filter { cache.record(for: [UInt8($0)]) != nil }.count == 3)
        try await Task.sleep(for: .milliseconds(300))
        // Past their time to live none is served, and each expired entry read is dropped.
        #expect(cache.record(for: [9]) == nil)
        #expect((0..<10).allSatisfy { cache.record(for: [UInt8($0)]) == nil })
        #expect(cache.count == 0)
    }

    @Test func hitsSkipTheDatabaseButRevocationIsSeenAtOnceOnTheRevokingInstance() async throws {
        let repository = MemoryTokenRepository()
        let cache = VerificationCache(maximumStaleness: .seconds(3600))
        cache.changesDelivered(through: .now)
        let service = TokenService(repository: repository, hasher: TokenHasher(currentKey: Fixtures.hashKey), prefix: .default, cache: cache)
        let (token, stored) = try await service.issue(TokenRequest(userID: "c", scopes: [], lifetimeMinutes: 60), by: caller, logger: Fixtures.logger)
        #expect(try await service.verify(token.secret, logger: Fixtures.logger) == .active(stored))
        #expect(cache.count == 1)
        // A hit never asks the repository: a record only the cache holds verifies, though the repository has no such token.
        let cachedOnly = AccessToken.generate(prefix: .default)
        let cachedRecord = record()
        cache.store(cachedRecord, digest: TokenHasher(currentKey: Fixtures.hashKey).digest(of: cachedOnly).bytes, ticket: cache.ticket())
        #expect(try await service.verify(cachedOnly.secret, logger: Fixtures.logger) == .active(cachedRecord))
        let uncached = TokenService(repository: repository, hasher: TokenHasher(currentKey: Fixtures.hashKey), prefix: .default)
        #expect(try await uncached.verify(cachedOnly.secret, logger: Fixtures.logger) == .inactive(.notFound))
        _ = try await service.revoke(id: stored.id, by: caller, logger: Fixtures.logger)
        #expect(try await service.verify(token.secret, logger: Fixtures.logger) == .inactive(.revoked))
    }

    @Test func anotherInstanceHearsOfARevocationThroughTheInvalidationLog() async throws {
        try await withTwoInstances { client, remote, remoteCache, local in
            let logger = Fixtures.logger
            for _ in 0..<100 where !remoteCache.isServing { try await Task.sleep(for: .milliseconds(20)) }
            #expect(remoteCache.isServing)

            let (token, record) = try await local.issue(TokenRequest(userID: "n", scopes: [], lifetimeMinutes: 60), by: caller, logger: logger)
            // The cache stores an answer only while its feed is current, which a loaded machine can briefly miss.
            for _ in 0..<100 where remoteCache.count == 0 {
                #expect(try await remote.verify(token.secret, logger: logger) == .active(record))
                if remoteCache.count == 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(remoteCache.count == 1)
            _ = try await local.revoke(id: record.id, by: caller, logger: logger)
            // Heard well before the entry's minute of life ends; scripts/pooler-test measures the p99 under 100 ms.
            let revoked = ContinuousClock.now
            var answer = try await remote.verify(token.secret, logger: logger)
            while answer != .inactive(.revoked), ContinuousClock.now - revoked < .seconds(10) {
                try await Task.sleep(for: .milliseconds(5))
                answer = try await remote.verify(token.secret, logger: logger)
            }
            #expect(answer == .inactive(.revoked))
            // Heard through the log, not by bypassing the cache: once the feed is current, the cache holds the
            // revoked record, which it can only have stored after the change evicted the active entry.
            // (A verification made while the feed is late, or racing a poll, is answered but not stored, and a
            // late feed hides what is stored: retry until the cache answers.)
            var cached: TokenRecord?
            for _ in 0..<200 where cached == nil {
                #expect(try await remote.verify(token.secret, logger: logger) == .inactive(.revoked))
                cached = remoteCache.record(for: TokenHasher(currentKey: Fixtures.hashKey).digest(of: token).bytes)
                if cached == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(remoteCache.count == 1)
            #expect(cached?.revokedAt != nil)
        }
    }

    @Test func aTokensPolicyIsStoredCopiedByRotationAndEditsReachOtherInstances() async throws {
        try await withTwoInstances { client, remote, remoteCache, local in
            let logger = Fixtures.logger
            let policy = TokenPolicy(audiences: ["gateway"], allowedNetworks: [IPNetwork(cidr: "10.0.0.0/8")!], meta: #"{"plan":"pro"}"#)
            let request = TokenRequest(userID: "pol", scopes: ["a:*"], lifetimeMinutes: 60, policy: policy)
            let (token, record) = try await local.issue(request, by: caller, logger: logger)
            #expect(try await PostgresTokenRepository(client: client).token(id: record.id, logger: logger)?.policy == policy)
            let gateway = Verifier(name: "gateway", clientAddress: "10.1.2.3")
            #expect(try await remote.verify(token.secret, by: gateway, logger: logger) == .active(record))
            #expect(try await remote.verify(token.secret, by: Verifier(name: "other", clientAddress: "10.1.2.3"), logger: logger) == .inactive(.wrongAudience))
            #expect(try await remote.verify(token.secret, by: Verifier(name: "gateway", clientAddress: "192.0.2.1"), logger: logger) == .inactive(.ipNotAllowed))
            #expect(try await remote.verify(token.secret, logger: logger) == .inactive(.wrongAudience))  // no verifier, no pass

            // Paused through one instance, refused by the other once it hears of it through the log.
            for _ in 0..<100 where remoteCache.count == 0 {
                #expect(try await remote.verify(token.secret, by: gateway, logger: logger) == .active(record))
                if remoteCache.count == 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(remoteCache.count == 1)  // the active answer is cached, so only the log can change it
            var pause = TokenChanges()
            pause.enabled = false
            guard case .updated(let paused) = try await local.update(id: record.id, with: pause, by: caller, logger: logger) else {
                Issue.record("the pause was not made")
                return
            }
            #expect(paused.policy.enabled == false)
            let changed = ContinuousClock.now
            var answer = try await remote.verify(token.secret, by: gateway, logger: logger)
            while answer != .inactive(.disabled), ContinuousClock.now - changed < .seconds(10) {
                try await Task.sleep(for: .milliseconds(5))
                answer = try await remote.verify(token.secret, by: gateway, logger: logger)
            }
            #expect(answer == .inactive(.disabled))
            // Heard through the log, not by bypassing the cache: once its feed is current, the cache holds the
            // paused record, which it can only have stored after the change evicted the active one.
            let digest = TokenHasher(currentKey: Fixtures.hashKey).digest(of: token).bytes
            var cached = remoteCache.record(for: digest)
            for _ in 0..<200 where cached?.policy.enabled != false {
                #expect(try await remote.verify(token.secret, by: gateway, logger: logger) == .inactive(.disabled))
                cached = remoteCache.record(for: digest)
                if cached?.policy.enabled != false { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(cached?.policy.enabled == false)

            var resume = TokenChanges()
            resume.enabled = true
            _ = try await local.update(id: record.id, with: resume, by: caller, logger: logger)
            let (_, replacement) = try await local.rotate(id: record.id, gracePeriod: 0, by: caller, logger: logger)
            #expect(replacement.policy == policy)
        }
    }

    @Test func usageLimitsAreExactUnderConcurrencyAcrossInstancesAndRefill() async throws {
        try await withTwoInstances { client, remote, _, local in
            let logger = Fixtures.logger
            // Two instances, one caching; the limit is the database's decision, so the cache cannot hand out uses.
            let instances = [remote, local]
            let policy = TokenPolicy(maxUses: 50)
            let (token, _) = try await instances[1].issue(TokenRequest(userID: "uses", scopes: [], lifetimeMinutes: 60, policy: policy), by: caller, logger: logger)
            let answers = try await withThrowingTaskGroup(of: Verification.self) { group in
                for index in 0..<200 { group.addTask { try await instances[index % 2].verify(token.secret, logger: logger) } }
                return try await group.reduce(into: [Verification]()) { $0.append($1) }
            }
            var remaining: [Int] = []
            for case .active(let record) in answers { remaining.append(record.usesLeft ?? -1) }
            #expect(remaining.count == 50)
            #expect(remaining.sorted() == Array(0..<50))
            #expect(answers.filter { $0 == .inactive(.usageExceeded) }.count == 150)

            // Refilled at the start of each period: pretend the last refill was an hour ago.
            let refilled = TokenPolicy(maxUses: 1, refill: UsageRefill(amount: 2, every: .hour))
            let (hourly, record) = try await instances[0].issue(TokenRequest(userID: "uses", scopes: [], lifetimeMinutes: 60, policy: refilled), by: caller, logger: logger)
            guard case .active = try await instances[0].verify(hourly.secret, logger: logger) else { Issue.record("the first use was refused"); return }
            #expect(try await instances[0].verify(hourly.secret, logger: logger) == .inactive(.usageExceeded))
            try await client.query("UPDATE tokens SET refilled_at = refilled_at - interval '1 hour' WHERE id = \(record.id)", logger: logger)
            var after: [Int?] = []
            for _ in 0..<3 {
                if case .active(let spent) = try await instances[0].verify(hourly.secret, logger: logger) { after.append(spent.usesLeft) } else { after.append(nil) }
            }
            #expect(after == [1, 0, nil])
        }
    }

    @Test func aTokensOwnRateLimitIsSharedAcrossInstances() async throws {
        try await withTwoInstances { client, remote, _, local in
            let logger = Fixtures.logger
            let instances = [remote, local]
            let policy = TokenPolicy(rateLimit: TokenPolicy.rateLimit(quota: 5, window: 3600))
            let (token, record) = try await local.issue(TokenRequest(userID: "rate", scopes: [], lifetimeMinutes: 60, policy: policy), by: caller, logger: logger)
            #expect(try await PostgresTokenRepository(client: client).token(id: record.id, logger: logger)?.policy == policy)
            let answers = try await withThrowingTaskGroup(of: Verification.self) { group in
                for index in 0..<40 { group.addTask { try await instances[index % 2].verify(token.secret, logger: logger) } }
                return try await group.reduce(into: [Verification]()) { $0.append($1) }
            }
            var remaining: [Int] = []
            for case .active(let verified) in answers { remaining.append(verified.rateLimitDecision?.remaining ?? -1) }
            #expect(remaining.sorted() == Array(0..<5))
            var refused = 0
            for case .rateLimited(let limit, let decision) in answers where limit == policy.rateLimit && !decision.allowed && decision.retryAfterSeconds > 0 {
                refused += 1
            }
            #expect(refused == 35)
            // The budget is the token's alone, kept under its id in the shared table.
            let rows = try await client.query("SELECT count(*)::int8 FROM rate_limits WHERE policy = 'token'", logger: logger)
            for try await count in rows.decode(Int64.self) { #expect(count == 1) }
        }
    }

    @Test func revokingEveryTokenOfAUserIsOneTransactionAndReachesEveryCache() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let logger = Fixtures.logger
            let repository = PostgresTokenRepository(client: client)
            let service = TokenService(repository: repository, hasher: TokenHasher(currentKey: Fixtures.hashKey), prefix: .default)
            var issued: [(token: AccessToken, id: UUID)] = []
            for _ in 0..<3 {
                let (token, record) = try await service.issue(TokenRequest(userID: "leaky", scopes: [], lifetimeMinutes: 60), by: caller, logger: logger)
                issued.append((token, record.id))
            }
            _ = try await service.revoke(id: issued[2].id, by: caller, logger: logger)
            let (other, _) = try await service.issue(TokenRequest(userID: "leaky2", scopes: [], lifetimeMinutes: 60), by: caller, logger: logger)
            let observer = RecordingObserver()
            let feed = InvalidationFeed(client: client, observers: [observer], logger: logger)
            let start = try await feed.poll(after: nil)

            let capture = LogCapture()
            #expect(try await service.revokeAll(userID: "leaky", by: caller, logger: capture.logger()) == 2)
            // Each is logged as a single revocation is (what re-applies it after a restore from backup)...
            let logged = capture.text.filter { $0.contains("token revoked") }
            #expect(logged.count == 2)
            for (_, id) in issued.prefix(2) { #expect(logged.contains { $0.contains(id.uuidString.lowercased()) }) }
            // ...and is in the invalidation log, numbered after everything before it.
            #expect(try await feed.poll(after: start) == start + 2)
            #expect(Set(observer.events.dropFirst()) == Set(issued.prefix(2).map { "token \($0.id)" }))
            for (token, _) in issued { #expect(try await service.verify(token.secret, logger: logger) == .inactive(.revoked)) }
            guard case .active = try await service.verify(other.secret, logger: logger) else {
                Issue.record("another user's token must stay active")
                return
            }
            let rows = try await client.query(
                "SELECT user_id, token_id IS NULL, details->>'revoked' FROM audit_events WHERE action = 'tokens.revoke'", logger: logger)
            var audit: [String] = []
            for try await (user, noToken, count) in rows.decode((String, Bool, String).self) { audit.append("\(user) \(noToken) \(count)") }
            #expect(audit == ["leaky true 2"])
            // Again: nothing left to revoke, still one audited event per request.
            #expect(try await service.revokeAll(userID: "leaky", by: caller, logger: logger) == 0)
            let events = try await client.query("SELECT count(*)::int8 FROM audit_events WHERE action = 'tokens.revoke'", logger: logger)
            var counts: [Int64] = []
            for try await count in events.decode(Int64.self) { counts.append(count) }
            #expect(counts == [2])
        }
    }

    @Test func changesAreNumberedInCommitOrderAndAPurgeReachesEveryEntry() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let logger = Fixtures.logger
            let repository = PostgresTokenRepository(client: client)
            let service = TokenService(repository: repository, hasher: TokenHasher(currentKey: Fixtures.hashKey), prefix: .default)
            let observer = RecordingObserver()
            let feed = InvalidationFeed(client: client, observers: [observer], logger: logger)
            let start = try await feed.poll(after: nil)
            #expect(observer.events == ["missed"])
            var ids: [UUID] = []
            for index in 0..<5 {
                let (_, record) = try await service.issue(TokenRequest(userID: "o\(index)", scopes: [], lifetimeMinutes: 60), by: caller, logger: logger)
                ids.append(record.id)
            }
            // Five revocations at once: each takes the clock's lock, so their numbers follow their commits.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in ids { group.addTask { _ = try await service.revoke(id: id, by: caller, logger: logger) } }
                try await group.waitForAll()
            }
            let afterRevokes = try await feed.poll(after: start)
            #expect(afterRevokes == start + 5)
            #expect(Set(observer.events.dropFirst()) == Set(ids.map { "token \($0)" }))
            let rows = try await client.query("SELECT seq FROM token_invalidations WHERE seq > \(start) ORDER BY seq", logger: logger)
            var numbers: [Int64] = []
            for try await seq in rows.decode(Int64.self) { numbers.append(seq) }
            #expect(numbers == Array((start + 1)...(start + 5)))
            // A change waits for the clock while another holds it uncommitted, so it can never be numbered, and
            // read, ahead of one that commits before it.
            let (_, lateRecord) = try await service.issue(TokenRequest(userID: "late", scopes: [], lifetimeMinutes: 60), by: caller, logger: logger)
            let (holding, release) = AsyncStream.makeStream(of: Void.self)
            let (held, holder) = AsyncStream.makeStream(of: Void.self)
            async let clockHeld: Void = client.inTransaction(logger: logger) { connection in
                try await connection.query("SELECT seq FROM invalidation_clock FOR UPDATE", logger: logger)
                holder.yield()
                for await _ in holding { break }
            }
            for await _ in held { break }
            async let revoked = service.revoke(id: lateRecord.id, by: caller, logger: logger)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await feed.poll(after: afterRevokes) == afterRevokes)  // nothing while the clock is held
            release.yield()
            try await clockHeld
            _ = try await revoked
            let afterLate = try await feed.poll(after: afterRevokes)
            #expect(afterLate == afterRevokes + 1)
            // A purge is one change that means every token.
            _ = try await client.query("UPDATE tokens SET revoked_at = now() - interval '2 days'", logger: logger)
            #expect(try await repository.purge(olderThan: 3600, by: "test", logger: logger) == 6)
            #expect(try await feed.poll(after: afterLate) == afterLate + 1)
            #expect(observer.events.last == "everything")
        }
    }
}

/// Runs `body` with two instances on one new database: `remote` caches, its feed polling the invalidation log;
/// `local` has no cache; both count tokens' own rate limits in PostgreSQL.
private func withTwoInstances(
    _ body: @escaping @Sendable (_ client: PostgresClient, _ remote: TokenService, _ remoteCache: VerificationCache, _ local: TokenService) async throws
        -> Void
) async throws {
    try await TestDatabase.withDatabase { client, _ in
        let hasher = TokenHasher(currentKey: Fixtures.hashKey)
        let remoteCache = VerificationCache(timeToLive: .seconds(60))
        // Tokens' own rate limits shared through PostgreSQL, as RATE_LIMIT_STORE=postgres has them.
        let tokenLimits = RateLimiters(RateLimitSettings(), client: client, timeout: .seconds(5)).tokens
        let remote = TokenService(
            repository: PostgresTokenRepository(client: client), hasher: hasher, prefix: .default, cache: remoteCache, tokenLimits: tokenLimits)
        let local = TokenService(repository: PostgresTokenRepository(client: client), hasher: hasher, prefix: .default, tokenLimits: tokenLimits)
        let feed = InvalidationFeed(client: client, observers: [remoteCache], logger: Fixtures.logger)
        let polling = Task { try await feed.run() }
        defer { polling.cancel() }
        try await body(client, remote, remoteCache, local)
    }
}

/// Records what an invalidation feed delivers.
private final class RecordingObserver: TokenChangeObserver, Sendable {
    private let recorded = Mutex<[String]>([])
    var events: [String] { recorded.withLock { $0 } }

    func changesDelivered(through instant: ContinuousClock.Instant) {}
    func changesMissed() { recorded.withLock { $0.append("missed") } }
    func tokenChanged(id: UUID) { recorded.withLock { $0.append("token \(id)") } }
    func allTokensChanged() { recorded.withLock { $0.append("everything") } }
}

@Suite("Replica reads")
struct RecentChangesTests {
    @Test func aReplicaAnswerIsTrustedOnlyForTokensThatHaveNotChangedWithinTheWindow() async throws {
        let changes = RecentChanges(window: .milliseconds(200), maximumStaleness: .milliseconds(100))
        let settled = UUID()
        let revoked = UUID()
        #expect(!changes.isSettled(settled))  // nothing delivered yet
        changes.changesDelivered(through: .now)
        #expect(changes.isSettled(settled))
        changes.tokenChanged(id: revoked)
        #expect(!changes.isSettled(revoked))
        #expect(changes.isSettled(settled))
        // Past the window the change has had time to replay, if the feed stayed current.
        try await Task.sleep(for: .milliseconds(250))
        #expect(!changes.isSettled(settled))  // the feed is no longer current
        changes.changesDelivered(through: .now)
        #expect(changes.isSettled(revoked))
        // A purge, or a feed that missed changes, makes every token recent.
        changes.allTokensChanged()
        #expect(!changes.isSettled(settled))
        try await Task.sleep(for: .milliseconds(250))
        changes.changesDelivered(through: .now)
        #expect(changes.isSettled(settled))
        changes.changesMissed()
        changes.changesDelivered(through: .now)
        #expect(!changes.isSettled(settled))
    }
}
