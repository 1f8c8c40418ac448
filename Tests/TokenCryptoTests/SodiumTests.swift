import Testing

@testable import TokenCrypto

@Suite("libsodium primitives")
struct SodiumTests {
    // Expected digests computed independently with Python's hashlib.blake2b(digest_size=32).
    @Test func unkeyedBlake2bMatchesKnownAnswers() {
        #expect(Hex.encode(Blake2b.hash([])) == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
        #expect(Hex.encode(Blake2b.hash(Array("abc".utf8))) == "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319")
        // Strings are hashed in place, with the same digests.
        #expect(Hex.encode(Blake2b.hash(utf8: "")) == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
        #expect(Hex.encode(Blake2b.hash(utf8: "abc")) == "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319")
    }

    @Test func keyedBlake2bMatchesKnownAnswers() {
        let key = (0..<32).map(UInt8.init)
        #expect(Hex.encode(Blake2b.hash(Array("tsr_example".utf8), key: key)) == "97667f74282e66cadc9b179364dac9dd4eb5da9b22ebe2c96477e0968a5d544e")
        #expect(Hex.encode(Blake2b.hash(utf8: "tsr_example", key: key)) == "97667f74282e66cadc9b179364dac9dd4eb5da9b22ebe2c96477e0968a5d544e")
        #expect(Hex.encode(Blake2b.hash((0..<64).map(UInt8.init), key: key)) == "7f46f043d63dfb3c9b1102c8824b632cae1fce453e3c0e9dc9e7113f3c1acc36")
    }

    @Test func keyedDigestsDependOnTheKey() {
        let message = Array("tsr_example".utf8)
        #expect(Blake2b.hash(message, key: [UInt8](repeating: 1, count: 32)) != Blake2b.hash(message, key: [UInt8](repeating: 2, count: 32)))
    }

    @Test func randomBytesAreFreshEachCall() {
        #expect(SecureRandom.bytes(count: 0).isEmpty)
        #expect(SecureRandom.bytes(count: 32).count == 32)
        #expect(SecureRandom.bytes(count: 32) != SecureRandom.bytes(count: 32))
    }

    @Test func constantTimeComparison() {
        let value = SecureRandom.bytes(count: 32)
        var other = value
        other[31] ^= 1
        #expect(ConstantTime.equals(value, value))
        #expect(!ConstantTime.equals(value, other))
        #expect(!ConstantTime.equals(value, Array(value.prefix(31))))
        #expect(ConstantTime.equals([], []))
    }

    @Test func indexOfMatchFindsEveryPositionAndNothingElse() {
        let candidates = (0..<5).map { _ in SecureRandom.bytes(count: 32) }
        for (index, candidate) in candidates.enumerated() {
            #expect(ConstantTime.indexOfMatch(candidate, in: candidates) == index)
        }
        #expect(ConstantTime.indexOfMatch(SecureRandom.bytes(count: 32), in: candidates) == nil)
        #expect(ConstantTime.indexOfMatch(candidates[0], in: []) == nil)
    }

    @Test func hexRoundTripsAndRejectsNonHex() {
        let bytes = SecureRandom.bytes(count: 32)
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
        #expect(Hex.decode("ABcd") == [0xab, 0xcd])
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
    }
}
