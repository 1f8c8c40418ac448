internal import CSodium

/// Process-wide libsodium initialisation, performed once before any primitive is used.
enum Sodium {
    /// `true` once `sodium_init()` has succeeded; evaluated lazily and exactly once.
    static let isReady: Bool = sodium_init() >= 0

    /// Traps if libsodium could not initialise: no primitive may run without it.
    @inline(__always)
    static func ensureReady() {
        precondition(isReady, "libsodium failed to initialise")
    }
}

/// Cryptographically secure random bytes from libsodium.
public enum SecureRandom {
    /// Returns `count` bytes from libsodium's CSPRNG.
    public static func bytes(count: Int) -> [UInt8] {
        Sodium.ensureReady()
        precondition(count >= 0, "count must not be negative")
        var output = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return output }
        output.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, count) }
        return output
    }

    /// Returns 256 random bits as 43 base62 characters, for secrets such as API keys.
    public static func base62Secret() -> String {
        Base62.encode(bytes(count: 32), width: 43)
    }
}

/// BLAKE2b-256, keyed or plain, from libsodium's `crypto_generichash`.
public enum Blake2b {
    /// The digest length in bytes (256 bits).
    public static let digestLength = 32
    /// The only key length accepted for keyed hashing (256 bits).
    public static let keyLength = 32

    /// Returns the unkeyed BLAKE2b-256 digest of `message`.
    public static func hash(_ message: [UInt8]) -> [UInt8] {
        digest(message, key: [])
    }

    /// Returns the unkeyed BLAKE2b-256 digest of the UTF-8 bytes of `text`, read in place.
    public static func hash(utf8 text: String) -> [UInt8] {
        text.withUTF8Bytes { digest($0, key: []) }
    }

    /// Returns the BLAKE2b-256 digest of `message` keyed with `key`, which must be 32 bytes.
    public static func hash(_ message: [UInt8], key: [UInt8]) -> [UInt8] {
        precondition(key.count == keyLength, "BLAKE2b keys are \(keyLength) bytes")
        return digest(message, key: key)
    }

    /// Returns the BLAKE2b-256 digest of the UTF-8 bytes of `text`, read in place, keyed with `key` (32 bytes).
    public static func hash(utf8 text: String, key: [UInt8]) -> [UInt8] {
        precondition(key.count == keyLength, "BLAKE2b keys are \(keyLength) bytes")
        return text.withUTF8Bytes { digest($0, key: key) }
    }

    private static func digest(_ message: [UInt8], key: [UInt8]) -> [UInt8] {
        message.withUnsafeBufferPointer { digest($0, key: key) }
    }

    private static func digest(_ message: UnsafeBufferPointer<UInt8>, key: [UInt8]) -> [UInt8] {
        Sodium.ensureReady()
        var output = [UInt8](repeating: 0, count: digestLength)
        // libsodium accepts a NULL message or key only with a zero length; Swift imports the pointers
        // as non-optional, so an empty buffer is passed as a pointer to a one-byte dummy instead.
        var messageDummy: UInt8 = 0
        var keyDummy: UInt8 = 0
        let status = output.withUnsafeMutableBufferPointer { out in
            withContiguousBytes(of: message, orDummy: &messageDummy) { messagePointer, messageCount in
                withContiguousBytes(of: key, orDummy: &keyDummy) { keyPointer, keyCount in
                    crypto_generichash(out.baseAddress!, digestLength, messagePointer, UInt64(messageCount), keyPointer, keyCount)
                }
            }
        }
        precondition(status == 0, "crypto_generichash failed")
        return output
    }
}

/// Comparisons whose running time does not depend on where, or whether, the inputs differ.
public enum ConstantTime {
    /// Whether `lhs` and `rhs` hold the same bytes; lengths are public, contents are compared with `sodium_memcmp`.
    public static func equals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return compare(lhs, rhs) == 0
    }

    /// The index of the candidate equal to `value`, scanning every candidate with no early exit.
    ///
    /// All candidates must have `value`'s length (digests of one algorithm): the scan then takes the same time
    /// whichever candidate matches, or none.
    public static func indexOfMatch(_ value: [UInt8], in candidates: [[UInt8]]) -> Int? {
        var found = 0  // index + 1 of the match, 0 for none
        for (index, candidate) in candidates.enumerated() {
            precondition(candidate.count == value.count, "candidates must all have the value's length")
            // sodium_memcmp returns 0 when equal and -1 otherwise, so `hit` is 1 or 0 without a branch.
            let hit = Int(compare(value, candidate) + 1)
            found |= (index + 1) & -hit
        }
        return found == 0 ? nil : found - 1
    }

    private static func compare(_ lhs: [UInt8], _ rhs: [UInt8]) -> Int32 {
        Sodium.ensureReady()
        guard !lhs.isEmpty else { return 0 }
        return lhs.withUnsafeBytes { left in
            rhs.withUnsafeBytes { right in
                sodium_memcmp(left.baseAddress!, right.baseAddress!, left.count)
            }
        }
    }
}

/// Calls `body` with a pointer to `bytes`, or to `dummy` with a zero count when `bytes` is empty.
private func withContiguousBytes<R>(
    of bytes: [UInt8],
    orDummy dummy: inout UInt8,
    _ body: (UnsafePointer<UInt8>, Int) -> R
) -> R {
    bytes.withUnsafeBufferPointer { withContiguousBytes(of: $0, orDummy: &dummy, body) }
}

private func withContiguousBytes<R>(
    of bytes: UnsafeBufferPointer<UInt8>,
    orDummy dummy: inout UInt8,
    _ body: (UnsafePointer<UInt8>, Int) -> R
) -> R {
    guard let base = bytes.baseAddress, !bytes.isEmpty else {
        return withUnsafePointer(to: &dummy) { body($0, 0) }
    }
    return body(base, bytes.count)
}
