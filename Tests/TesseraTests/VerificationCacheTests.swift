import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
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

    @Test func itServesOnlyWhileItsListenerIsConnected() {
        let cache = VerificationCache()
        let entry = record()
        cache.store(entry, digest: [1], ticket: cache.ticket())
        #expect(cache.record(for: [1]) == nil)  // not listening yet: nothing stored or served
        cache.listenerConnected()
        cache.store(entry, digest: [1], ticket: cache.ticket())
        #expect(cache.record(for: [1]) == entry)
        cache.listenerDisconnected()
        #expect(cache.record(for: [1]) == nil)
        cache.listenerConnected()
        #expect(cache.record(for: [1]) == nil)  // a reconnection starts empty
    }

    @Test func aLookupThatRacedAnInvalidationDoesNotStoreItsStaleResult() {
        let cache = VerificationCache()
        cache.listenerConnected()
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
        let cache = VerificationCache(timeToLive: .milliseconds(200), capacity: 3)
        cache.listenerConnected()
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
        let cache = VerificationCache()
        cache.listenerConnected()
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

    @Test func anotherInstanceHearsOfARevocationThroughPostgreSQL() async throws {
        try await TestDatabase.withDatabase { client, url in
            let logger = Fixtures.logger
            let repository = PostgresTokenRepository(client: client)
            let hasher = TokenHasher(currentKey: Fixtures.hashKey)
            let remoteCache = VerificationCache(timeToLive: .seconds(60))
            let remote = TokenService(repository: repository, hasher: hasher, prefix: .default, cache: remoteCache)
            let local = TokenService(repository: repository, hasher: hasher, prefix: .default)
            let listener = InvalidationListener(databaseURL: url, cache: remoteCache, logger: logger)
            let listening = Task { try await listener.run() }
            defer { listening.cancel() }
            for _ in 0..<100 where !remoteCache.isServing { try await Task.sleep(for: .milliseconds(20)) }
            #expect(remoteCache.isServing)

            let (token, record) = try await local.issue(TokenRequest(userID: "n", scopes: [], lifetimeMinutes: 60), by: caller, logger: logger)
            #expect(try await remote.verify(token.secret, logger: logger) == .active(record))
            #expect(remoteCache.count == 1)
            _ = try await local.revoke(id: record.id, by: caller, logger: logger)
            var answer = try await remote.verify(token.secret, logger: logger)
            for _ in 0..<100 where answer != .inactive(.revoked) {
                try await Task.sleep(for: .milliseconds(10))
                answer = try await remote.verify(token.secret, logger: logger)
            }
            #expect(answer == .inactive(.revoked))
            // Heard through the notification, not by bypassing the cache: the listener is still connected. The
            // notification has evicted the active entry, so the next lookup stores the revoked record, served as revoked.
            #expect(remoteCache.isServing)
            #expect(try await remote.verify(token.secret, logger: logger) == .inactive(.revoked))
            #expect(remoteCache.count == 1)
            #expect(remoteCache.record(for: hasher.digest(of: token).bytes)?.revokedAt != nil)
        }
    }
}
