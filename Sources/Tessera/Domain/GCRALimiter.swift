import NIOCore
import Synchronization

/// A GCRA (generic cell rate algorithm) rate limiter over many keys, with memory bounded by `capacity`.
///
/// Each key costs one theoretical arrival time. When `capacity` keys are tracked, the least recently seen one
/// is forgotten to make room (it starts again with a full budget), so memory never grows past the cap.
public final class GCRALimiter: Sendable {
    /// The budget every key gets.
    public let policy: RateLimitPolicy
    /// The most keys tracked at once.
    public let capacity: Int
    private let state: Mutex<LRUTable>
    private let gcra: GCRA

    /// Creates a limiter tracking at most `capacity` keys.
    public init(policy: RateLimitPolicy, capacity: Int) {
        precondition(capacity > 0, "capacity must be positive")
        self.policy = policy
        self.capacity = capacity
        self.state = Mutex(LRUTable(capacity: capacity))
        self.gcra = GCRA(policy, unitsPerSecond: 1_000_000_000)
    }

    /// Spends one request from `key`'s budget (under `policy`, the limiter's own by default) if it has one left.
    public func acquire(_ key: String, under policy: RateLimitPolicy? = nil, now: Int64 = monotonicNanoseconds()) -> RateLimitDecision {
        decide(key, now: now, consume: true, gcra: arithmetic(for: policy))
    }

    /// Whether `key` could spend a request now, without spending it.
    public func check(_ key: String, now: Int64 = monotonicNanoseconds()) -> RateLimitDecision {
        decide(key, now: now, consume: false, gcra: gcra)
    }

    /// How many keys are tracked now.
    public var trackedKeys: Int { state.withLock { $0.count } }

    /// The arithmetic of `policy`: the limiter's own, worked out once, unless another is named.
    private func arithmetic(for policy: RateLimitPolicy?) -> GCRA {
        guard let policy, policy != self.policy else { return gcra }
        return GCRA(policy, unitsPerSecond: 1_000_000_000)
    }

    private func decide(_ key: String, now: Int64, consume: Bool, gcra: GCRA) -> RateLimitDecision {
        state.withLock { table in
            let stored = table.value(for: key)
            let (fits, spent) = gcra.admit(stored: stored, now: now)
            if fits && consume { table.set(spent, for: key) }
            return gcra.decision(now: now, arrival: fits && consume ? spent : max(stored ?? now, now), allowed: fits)
        }
    }
}

/// Nanoseconds on a clock that never goes backwards.
public func monotonicNanoseconds() -> Int64 {
    Int64(NIODeadline.now().uptimeNanoseconds)
}

/// A fixed-capacity map from key to arrival time that forgets the least recently used key when full.
///
/// Entries live in arrays linked into a recency list by index, so a full table allocates nothing more.
struct LRUTable: ~Copyable {
    private var slots: [String: Int32] = [:]
    private var keys: [String] = []
    private var values: [Int64] = []
    private var previous: [Int32] = []
    private var next: [Int32] = []
    private var head: Int32 = -1  // most recently used
    private var tail: Int32 = -1  // least recently used
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        slots.reserveCapacity(min(capacity, 1 << 16))
    }

    var count: Int { slots.count }

    /// The value for `key`, marking it most recently used.
    mutating func value(for key: String) -> Int64? {
        guard let slot = slots[key] else { return nil }
        moveToFront(slot)
        return values[Int(slot)]
    }

    /// Sets `key`'s value, evicting the least recently used key when the table is full.
    mutating func set(_ value: Int64, for key: String) {
        if let slot = slots[key] {
            values[Int(slot)] = value
            moveToFront(slot)
            return
        }
        let slot: Int32
        if keys.count < capacity {
            slot = Int32(keys.count)
            keys.append(key)
            values.append(value)
            previous.append(-1)
            next.append(-1)
        } else {
            slot = tail
            unlink(slot)
            slots[keys[Int(slot)]] = nil
            keys[Int(slot)] = key
            values[Int(slot)] = value
        }
        slots[key] = slot
        linkAtFront(slot)
    }

    private mutating func moveToFront(_ slot: Int32) {
        guard slot != head else { return }
        unlink(slot)
        linkAtFront(slot)
    }

    private mutating func unlink(_ slot: Int32) {
        let before = previous[Int(slot)]
        let after = next[Int(slot)]
        if before >= 0 { next[Int(before)] = after } else { head = after }
        if after >= 0 { previous[Int(after)] = before } else { tail = before }
        previous[Int(slot)] = -1
        next[Int(slot)] = -1
    }

    private mutating func linkAtFront(_ slot: Int32) {
        previous[Int(slot)] = -1
        next[Int(slot)] = head
        if head >= 0 { previous[Int(head)] = slot }
        head = slot
        if tail < 0 { tail = slot }
    }
}
