/// A 256-bit key for the keyed token hash, with the id recorded beside every digest it makes.
public struct HashKey: Sendable {
    /// The id stored in `hash_key_id`, so a digest can be traced to the key that made it.
    public let id: Int
    let bytes: [UInt8]

    /// Creates a key from 32 raw bytes, or returns `nil` for any other length.
    public init?(id: Int, bytes: [UInt8]) {
        guard bytes.count == Blake2b.keyLength else { return nil }
        self.id = id
        self.bytes = bytes
    }

    /// Creates a key from 64 hexadecimal characters, or returns `nil`.
    public init?(id: Int, hex: some StringProtocol) {
        guard let bytes = Hex.decode(hex) else { return nil }
        self.init(id: id, bytes: bytes)
    }

    /// Makes a new random key (for `tessera hash-key generate`).
    public static func generate(id: Int) -> HashKey {
        HashKey(id: id, bytes: SecureRandom.bytes(count: Blake2b.keyLength))!
    }

    /// The key as 64 hexadecimal characters, the form `TOKEN_HASH_KEY` takes.
    public var hex: String { Hex.encode(bytes) }
}

/// A token digest and the id of the key that made it.
public struct TokenDigest: Sendable, Hashable {
    /// The keyed BLAKE2b-256 digest of the whole token.
    public let bytes: [UInt8]
    /// The id of the hashing key.
    public let keyID: Int

    /// Pairs a stored digest with its key id.
    public init(bytes: [UInt8], keyID: Int) {
        self.bytes = bytes
        self.keyID = keyID
    }
}

/// Keyed BLAKE2b-256 of tokens under a current key, with older keys kept for verification only.
public struct TokenHasher: Sendable {
    /// The key that hashes new tokens and to which old-key tokens are rehashed.
    public let currentKey: HashKey
    /// Retired keys whose tokens still verify.
    public let previousKeys: [HashKey]

    /// Creates a hasher; ids must be distinct across the current and previous keys.
    public init(currentKey: HashKey, previousKeys: [HashKey] = []) {
        precondition(Set([currentKey.id] + previousKeys.map(\.id)).count == previousKeys.count + 1, "hash key ids must be distinct")
        self.currentKey = currentKey
        self.previousKeys = previousKeys
    }

    /// The digest under the current key: the only one stored for new tokens.
    public func digest(of token: AccessToken) -> TokenDigest {
        digest(of: token, under: currentKey)
    }

    /// The digests under the current key and then every previous key, for a lookup with `= ANY(...)`.
    public func candidateDigests(of token: AccessToken) -> [TokenDigest] {
        ([currentKey] + previousKeys).map { digest(of: token, under: $0) }
    }

    private func digest(of token: AccessToken, under key: HashKey) -> TokenDigest {
        TokenDigest(bytes: Blake2b.hash(utf8: token.secret, key: key.bytes), keyID: key.id)
    }
}
