import Foundation
import NIOCore
import Testing
import TokenCrypto

@testable import Tessera

@Suite("JSON reading and writing")
struct JSONTests {
    @Test func parsesWhatRFC8259Allows() throws {
        let value = try JSONParser.parse(Array(#" {"a": [1, -2.5e3, true, false, null], "b": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "c": {}} "#.utf8))
        guard case .object(let object) = value else {
            Issue.record("not an object")
            return
        }
        #expect(object["a"] == .array([.integer(1), .integer(-2500), .bool(true), .bool(false), .null]))
        #expect(object["b"] == .string("x\"\\/\u{08}\u{0C}\n\r\té😀"))
        #expect(object["c"] == .object([:]))
        #expect(try JSONParser.parse(Array("\"héllo\"".utf8)) == .string("héllo"))
        #expect(try JSONParser.parse(Array("12345678901234567890".utf8)) == .number(1.2345678901234567e19))  // past Int.max: a number
        #expect(try JSONParser.parse(Array("346.0".utf8)) == .integer(346))  // an integer, as JSON Schema counts
        #expect(try JSONParser.parse(Array("3.46e2".utf8)) == .integer(346))
        #expect(try JSONParser.parse(Array("346.5".utf8)) == .number(346.5))
    }

    @Test(arguments: [
        "", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "'x'", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul", "NaN", "Infinity",
        "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{01}b\"", "1 2", "{\"a\":1}x", "{\"a\":1,\"a\":2}", "1e999",
        String(repeating: "[", count: 40) + String(repeating: "]", count: 40),
    ])
    func refusesWhatItMustNot(text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    /// The parser reads bytes through an unchecked pointer: every cut of a valid document must be refused, not
    /// read past its end (debug builds, as tests run, trap on an out-of-bounds read).
    @Test func refusesEveryTruncationReadingNoFurther() throws {
        let text = Array(#"{"token": "tsr_a\u00e9\ud83d\ude00", "n": [-1.5e+3, 0, true, false, null], "o": {"k": "v"}}"#.utf8)
        #expect(throws: Never.self) { try JSONParser.parse(text) }
        for end in 0..<text.count {
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(text[..<end])) }
        }
        // Only the readable bytes count: what lies before the reader index or past the writer index is not JSON.
        var buffer = ByteBuffer(bytes: Array("x".utf8) + text + Array("x".utf8))
        buffer.moveReaderIndex(forwardBy: 1)
        buffer.moveWriterIndex(to: buffer.writerIndex - 1)
        #expect(try JSONParser.parse(buffer) == JSONParser.parse(text))
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func handWrittenListsMatchJSONEncoderByteForByte() throws {
        struct Expected: Encodable {
            var nextCursor: String?
            var tokens: [TokenMetadata]

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(nextCursor, forKey: .nextCursor)
                try container.encode(tokens, forKey: .tokens)
            }

            enum CodingKeys: String, CodingKey { case nextCursor, tokens }
        }
        let now = Date(timeIntervalSince1970: 1_795_934_898)
        let records = [
            TokenRecord(
                id: UUID(), userID: "u\"ser\\\n\u{01}é", scopes: ["read", "a\"b"], digest: .init(bytes: [1], keyID: 1), displayPrefix: "tsr_abcd",
                name: "CI \"deploy\"", createdAtMicroseconds: 1_795_930_000_123_456, expiresAt: now.addingTimeInterval(3600), revokedAt: nil,
                lastUsedAt: now.addingTimeInterval(-60), createdBy: "admin"),
            TokenRecord(
                id: UUID(), userID: "plain", scopes: [], digest: .init(bytes: [2], keyID: 1), displayPrefix: "tsr_efgh", name: nil,
                createdAtMicroseconds: 0, expiresAt: now.addingTimeInterval(-1), revokedAt: now.addingTimeInterval(-5), lastUsedAt: nil,
                createdBy: "admin", replaces: UUID(), replacedBy: UUID(),
                policy: TokenPolicy(
                    audiences: ["gateway"], allowedNetworks: [IPNetwork(cidr: "10.0.0.0/8")!], meta: #"{"a":[1,"x",null]}"#, enabled: false, maxUses: 9,
                    refill: UsageRefill(amount: 9, every: .day), rateLimit: TokenPolicy.rateLimit(quota: 100, window: 60)),
                usesLeft: 4),
            TokenRecord(
                id: UUID(), userID: "old", scopes: ["*", "repo/x:ünï"], digest: .init(bytes: [3], keyID: 1), displayPrefix: "tsr_ijkl", name: "",
                createdAtMicroseconds: 951_782_400_000_000, expiresAt: now.addingTimeInterval(-10), revokedAt: nil, lastUsedAt: nil,
                createdBy: "admin"),
        ]
        for cursor in [nil, "1795930000123456_7a1f0c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"] {
            let written = TokenController.TokenList(records: records, at: now, nextCursor: cursor).body
            let encoded = try JSONEncoder.api.encode(Expected(nextCursor: cursor, tokens: records.map { TokenMetadata($0, at: now) }))
            #expect(String(buffer: written) == String(decoding: encoded, as: UTF8.self))
        }
        #expect(String(buffer: TokenController.TokenList(records: [], at: now, nextCursor: nil).body) == #"{"nextCursor":null,"tokens":[]}"#)
    }

    @Test func handWrittenCreatedTokenMatchesJSONEncoder() throws {
        struct Expected: Encodable {
            var summary: TokenSummary
            var token: String
            enum CodingKeys: String, CodingKey { case token }
            func encode(to encoder: any Encoder) throws {
                try summary.encode(to: encoder)
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(token, forKey: .token)
            }
        }
        let token = AccessToken.generate(prefix: .default)
        for (user, name) in [("u\"ser\\\n\u{01}é", "CI \"deploy\"" as String?), ("plain", nil)] {
            let record = TokenRecord(
                id: UUID(), userID: user, scopes: ["read", "a\"b"], digest: .init(bytes: [1], keyID: 1), displayPrefix: token.displayPrefix,
                name: name, createdAtMicroseconds: 1_795_930_000_123_456, expiresAt: Date(timeIntervalSince1970: 1_795_933_600), revokedAt: nil,
                lastUsedAt: nil, createdBy: "admin")
            let written = TokenController.CreatedToken(record: record, token: token).body
            let encoded = try JSONEncoder.api.encode(Expected(summary: TokenSummary(record), token: token.secret))
            #expect(String(buffer: written) == String(decoding: encoded, as: UTF8.self))
        }
    }

    @Test func handWrittenVerifyAnswersMatchJSONEncoder() throws {
        struct Expected: Encodable {
            var active: Bool
            var tokenId: String
            var userId: String
            var scopes: [String]
            var expiresAt: Date
            var createdAt: Date
        }
        for (user, seconds) in [("u\"ser\\\n\u{01}é", 1_795_934_898.9), ("plain", 0), ("old", -86_400 * 400 + 5), ("leap", 951_782_400)] {
            let record = TokenRecord(
                id: UUID(), userID: user, scopes: ["read", "a\"b"], digest: .init(bytes: [1], keyID: 1), displayPrefix: "tsr_abcd", name: nil,
                createdAtMicroseconds: Int64(seconds * 1_000_000), expiresAt: Date(timeIntervalSince1970: seconds + 3600), revokedAt: nil,
                lastUsedAt: nil, createdBy: "admin")
            let written = VerificationController.VerificationResult(.active(record)).json
            let encoded = try JSONEncoder.api.encode(
                Expected(active: true, tokenId: record.id.lowercasedString, userId: user, scopes: record.scopes, expiresAt: record.expiresAt,
                    createdAt: Date(timeIntervalSince1970: (seconds).rounded(.down))))
            #expect(try JSONSerialization.jsonObject(with: Data(written.utf8)) as? NSDictionary == JSONSerialization.jsonObject(with: encoded) as? NSDictionary)
        }
        #expect(VerificationController.VerificationResult(.inactive(.revoked)).json == #"{"active":false,"code":"REVOKED"}"#)
        let spent = RateLimitDecision(allowed: false, remaining: 0, resetSeconds: 60, retryAfterSeconds: 20)
        #expect(
            VerificationController.VerificationResult(.rateLimited(TokenPolicy.rateLimit(quota: 3, window: 60), spent)).json
                == #"{"active":false,"code":"RATE_LIMITED","rateLimit":{"limit":3,"remaining":0,"reset":60,"retryAfter":20}}"#)
    }

    @Test func datesAtTheEdgeOfFourDigitYearsAreWrittenInFull() {
        for (seconds, text) in [(253_402_300_799.0, #""9999-12-31T23:59:59Z""#), (253_402_300_800.0, #""10000-01-01T00:00:00Z""#)] {
            var buffer = ByteBuffer()
            JSONText.write(Date(timeIntervalSince1970: seconds), to: &buffer)
            #expect(String(buffer: buffer) == text)
        }
    }
}
