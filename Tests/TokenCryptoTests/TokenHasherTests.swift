import Testing

@testable import TokenCrypto

@Suite("Keyed token hashing")
struct TokenHasherTests {
    @Test func digestIsKeyedBlake2bOfTheWholeToken() throws {
        let key = try #require(HashKey(id: 3, bytes: (0..<32).map(UInt8.init)))
        let token = AccessToken.generate(prefix: .default)
        let digest = TokenHasher(currentKey: key).digest(of: token)
        #expect(digest.keyID == 3)
        #expect(digest.bytes == Blake2b.hash(Array(token.secret.utf8), key: (0..<32).map(UInt8.init)))
    }

    @Test func candidateDigestsCoverTheCurrentKeyFirstThenOldKeys() {
        let old = HashKey.generate(id: 1)
        let current = HashKey.generate(id: 2)
        let token = AccessToken.generate(prefix: .default)
        let candidates = TokenHasher(currentKey: current, previousKeys: [old]).candidateDigests(of: token)
        #expect(candidates.map(\.keyID) == [2, 1])
        #expect(candidates[1] == TokenHasher(currentKey: old).digest(of: token))
        #expect(candidates[0] == TokenHasher(currentKey: current).digest(of: token))
    }

    @Test func keysMustBe32Bytes() {
        #expect(HashKey(id: 1, hex: String(repeating: "ab", count: 31)) == nil)
        #expect(HashKey(id: 1, hex: String(repeating: "ab", count: 33)) == nil)
        #expect(HashKey(id: 1, hex: String(repeating: "ab", count: 32)) != nil)
        #expect(HashKey(id: 1, hex: String(repeating: "zz", count: 32)) == nil)
    }
}
