import Testing

@testable import TokenCrypto

@Suite("Token format")
struct AccessTokenTests {
    private static let base62 = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    @Test func generatedTokenHasTheDocumentedShape() {
        let token = AccessToken.generate(prefix: .default)
        #expect(token.secret.hasPrefix("tsr_"))
        #expect(token.secret.count == 4 + 43 + 6)
        #expect(token.secret.dropFirst(4).allSatisfy { Self.base62.contains($0) })
        #expect(token.displayPrefix == String(token.secret.prefix(8)))
    }

    @Test func parsingAGeneratedTokenRoundTrips() throws {
        for prefix in ["tsr", "ab", "acme2024prod"] {
            let token = AccessToken.generate(prefix: try #require(TokenPrefix(prefix)))
            let parsed = try #require(AccessToken(parsing: token.secret))
            #expect(parsed == token)
            #expect(parsed.prefix.rawValue == prefix)
        }
    }

    @Test func everySingleCharacterChangeIsCaught() throws {
        let replacements = Self.base62 + Array("_-.+/= é\u{0}")
        for _ in 0..<5 {
            let token = AccessToken.generate(prefix: .default)
            let characters = Array(token.secret)
            for position in characters.indices {
                for replacement in replacements where replacement != characters[position] {
                    var changed = characters
                    changed[position] = replacement
                    #expect(AccessToken(parsing: String(changed)) == nil, "change at \(position) to \(replacement) was accepted")
                }
            }
        }
    }

    @Test func truncatedExtendedAndForeignStringsAreRejected() {
        let token = AccessToken.generate(prefix: .default).secret
        for candidate in ["", "tsr_", String(token.dropLast()), token + "0", "x" + token, " " + token, token + "\n", "TSR" + token.dropFirst(3),
            String(repeating: "a", count: 10_000)]
        {
            #expect(AccessToken(parsing: candidate) == nil, "\(candidate.prefix(20)) was accepted")
        }
    }

    @Test func hundredThousandGeneratedTokensAreDistinct() async {
        var seen = Set<String>()
        for index in 0..<100_000 {
            seen.insert(AccessToken.generate(prefix: .default).secret)
            // Seconds of work in a debug build: let the tests running beside it have the shared threads too.
            if index % 1_000 == 0 { await Task.yield() }
        }
        #expect(seen.count == 100_000)
    }

    @Test func descriptionShowsOnlyTheDisplayPrefix() {
        let token = AccessToken.generate(prefix: .default)
        #expect(!"\(token)".contains(token.secret))
        #expect(!String(reflecting: token).contains(token.secret))
        #expect("\(token)".hasPrefix(token.displayPrefix))
    }

    @Test(arguments: ["a", "abcdefghijklm", "Tsr", "ts_r", "ts-r", ""])
    func invalidPrefixesAreRefused(_ prefix: String) {
        #expect(TokenPrefix(prefix) == nil)
    }

    @Test func base62AndCRC32MatchIndependentReferenceValues() {
        // Reference values computed with Python's zlib.crc32 and integer arithmetic.
        #expect(CRC32.checksum("123456789".utf8) == 0xCBF4_3926)
        #expect(Base62.encode(0xCBF4_3926, width: 6) == "3jZRME")
        #expect(Base62.decode("3jZRME".utf8) == 0xCBF4_3926)
        #expect(Base62.decode("0000zz".utf8) == 61 * 62 + 61)
        #expect(Base62.decode("3jZ-ME".utf8) == nil)
        #expect(Base62.encode([UInt8](repeating: 0xff, count: 32), width: 43) == "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1")
        #expect(Base62.encode([UInt8](repeating: 0, count: 32), width: 43) == String(repeating: "0", count: 43))
        #expect(Base62.encode([1] + [UInt8](repeating: 0, count: 31), width: 43) == "0EhWuMzfS7MPuxAu520Mu4XwCuyZfalRej3Z8gTlzA8")
        #expect(Base62.encode([UInt8](repeating: 0, count: 31) + [1], width: 43) == String(repeating: "0", count: 42) + "1")
        #expect(Base62.encode((0..<32).map { UInt8($0) }, width: 43) == "003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf")
        #expect(Base62.encode([0x80] + [UInt8](repeating: 0, count: 31), width: 43) == "ULrwNTJa3CHVaAVmO8lHlO4Afd3drtx651MXvhT4GuW")
        #expect(Base62.encode([0x12, 0x34, 0x56, 0x78, 0x9a], width: 7) == "1NLOknK")  // a length that is not a whole number of limbs
    }
}
