import Foundation
import Synchronization
import TokenCrypto

/// Recently verified token records, keyed by digest, so hot tokens skip the database.
///
/// Correctness comes before hits: every revoke, rotate and purge evicts here (on the instance that made it, before
/// it answers, and on every other instance through the invalidation feed); the cache answers only while the feed
/// has delivered every change committed up to `maximumStaleness` ago, and is bypassed entirely otherwise; and an
/// entry lives at most `timeToLive`. Expiry and scopes are still checked on every verification, against the cached
/// record.
public final class VerificationCache: Sendable {
    /// How long an entry may be used.
    public let timeToLive: Duration
    /// Most entries kept.
    public let capacity: Int
    /// How far behind the feed may be while the cache answers: the bound on a revocation reaching this instance.
    public let maximumStaleness: Duration

    /// A stored record: a class, so that a lookup takes one reference out of the dictionary rather than copying
    /// every field of the entry (the record it returns is still copied once).
    private final class Entry: Sendable {
        let record: TokenRecord
        let storedAt: ContinuousClock.Instant

        init(record: TokenRecord, storedAt: ContinuousClock.Instant) {
            self.record = record
            self.storedAt = storedAt
        }
    }

    /// A digest as a dictionary key, hashed by its first eight bytes: a keyed hash makes them uniformly random.
    private struct DigestKey: Hashable {
        let bytes: [UInt8]

        func hash(into hasher: inout Hasher) {
            bytes.withUnsafeBytes { raw in
                if raw.count >= 8 { hasher.combine(raw.loadUnaligned(as: UInt64.self)) } else { hasher.combine(bytes: raw) }
            }
        }
    }

    private struct State {
        var entries: [DigestKey: Entry] = [:]
        var digestsByID: [UUID: DigestKey] = [:]
        /// Every change committed before this instant has been applied; while it is older than the staleness
        /// bound (or unknown), nothing is read from or written to the cache.
        var currentThrough: ContinuousClock.Instant?
        /// Bumped by every invalidation: a lookup that began before one must not store what it read.
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Creates an empty cache; it serves nothing until the feed has delivered changes (``changesDelivered(through:)``).
    public init(timeToLive: Duration = .seconds(5), capacity: Int = 100_000, maximumStaleness: Duration = .milliseconds(100)) {
        self.timeToLive = timeToLive
        self.capacity = capacity
        self.maximumStaleness = maximumStaleness
    }

    /// Whether changes are known up to `maximumStaleness` before `now`.
    private func isCurrent(_ state: State, at now: ContinuousClock.Instant) -> Bool {
        guard let through = state.currentThrough else { return false }
        return now - through <= maximumStaleness
    }

    /// The cached record for `digest`, if the cache is usable and the entry is fresh.
    func record(for digest: [UInt8]) -> TokenRecord? {
        let digest = DigestKey(bytes: digest)
        let now = ContinuousClock.now
        return state.withLock { state in
            guard isCurrent(state, at: now), let entry = state.entries[digest] else { return nil }
            guard now - entry.storedAt < timeToLive else {
                state.entries[digest] = nil
                state.digestsByID[entry.record.id] = nil
                return nil
            }
            return entry.record
        }
    }

    /// A ticket to store what a database lookup starting now will find.
    func ticket() -> UInt64 {
        state.withLock { $0.generation }
    }

    /// Stores `record` under `digest`, unless an invalidation happened since `ticket` or the cache is not usable.
    func store(_ record: TokenRecord, digest: [UInt8], ticket: UInt64) {
        let digest = DigestKey(bytes: digest)
        let now = ContinuousClock.now
        state.withLock { state in
            guard isCurrent(state, at: now), state.generation == ticket else { return }
            if state.entries.count >= capacity, state.entries[digest] == nil, let victim = state.entries.first {
                state.entries.removeValue(forKey: victim.key)
                state.digestsByID[victim.value.record.id] = nil
            }
            state.entries[digest] = Entry(record: record, storedAt: now)
            state.digestsByID[record.id] = digest
        }
    }

    /// Forgets the token `id`.
    public func invalidate(tokenID id: UUID) {
        state.withLock { state in
            state.generation &+= 1
            if let digest = state.digestsByID.removeValue(forKey: id) { state.entries[digest] = nil }
        }
    }

    /// Forgets everything.
    public func invalidateAll() {
        state.withLock { state in
            state.generation &+= 1
            state.entries.removeAll(keepingCapacity: true)
            state.digestsByID.removeAll(keepingCapacity: true)
        }
    }

    /// How many entries are held.
    public var count: Int { state.withLock { $0.entries.count } }

    /// Whether the cache is answering: the feed is current within `maximumStaleness`.
    public var isServing: Bool {
        let now = ContinuousClock.now
        return state.withLock { isCurrent($0, at: now) }
    }
}

extension VerificationCache: TokenChangeObserver {
    public func changesDelivered(through instant: ContinuousClock.Instant) {
        state.withLock { state in
            if state.currentThrough.map({ $0 < instant }) ?? true { state.currentThrough = instant }
        }
    }

    public func changesMissed() {
        state.withLock { state in
            state.generation &+= 1
            state.currentThrough = nil
            state.entries.removeAll(keepingCapacity: true)
            state.digestsByID.removeAll(keepingCapacity: true)
        }
    }

    public func tokenChanged(id: UUID) {
        invalidate(tokenID: id)
    }

    public func allTokensChanged() {
        invalidateAll()
    }
}

/// Whether verifications may be answered from the cache.
public enum VerificationCacheStatus: String, Sendable, Codable {
    /// The cache answers: its invalidation feed is current.
    case serving
    /// The cache is on but not answering: its invalidation feed is not current, so every verification asks the database.
    case bypassed
    /// There is no cache (`VERIFY_CACHE=off`).
    case off
}
