import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import Tessera

/// One event is one line, whatever a client put in a logged value.
@Suite("Log lines")
struct LineLogHandlerTests {
    private func capture(_ format: LineLogHandler.Format, _ body: (inout Logger) -> Void) -> [String] {
        let lines = NIOLockedValueBox<[String]>([])
        var logger = Logger(label: "tessera") { label in
            LineLogHandler(label: label, format: format) { line in lines.withLockedValue { $0.append(line) } }
        }
        body(&logger)
        return lines.withLockedValue { $0 }
    }

    @Test func aTextLineHasTimeLevelLabelSortedMetadataSourceAndMessage() throws {
        let lines = capture(.text) { logger in
            logger[metadataKey: "hb.request.id"] = "abc"
            logger.info("authentication failed", metadata: ["client": "127.0.0.1", "caller": "admin"], source: "Tessera")
        }
        let line = try #require(lines.first)
        #expect(lines.count == 1)
        #expect(line.hasSuffix(" info tessera: caller=admin client=127.0.0.1 hb.request.id=abc [Tessera] authentication failed\n"))
        let timestamp = String(line.prefix(while: { $0 != " " }))
        let parsed = try #require(ISO8601DateFormatter().date(from: timestamp))
        #expect(abs(parsed.timeIntervalSinceNow) < 5)
    }

    @Test func valuesThatCouldForgeALineAreEscaped() throws {
        let hostile = "x\n2026-01-01T00:00:00Z info tessera: caller=admin [Tessera] authenticated\u{2028}\"=\\"
        let lines = capture(.text) { logger in
            logger.notice("authentication failed", metadata: ["client": .string(hostile)])
        }
        let line = try #require(lines.first)
        #expect(lines.count == 1)
        #expect(line.filter { $0 == "\n" }.count == 1 && line.hasSuffix("\n"))
        #expect(!line.unicodeScalars.contains("\u{2028}"))
        #expect(line.contains(#"client="x\n2026-01-01T00:00:00Z info tessera: caller=admin [Tessera] authenticated\u{2028}\"=\\""#))
        // A value with no space or quote still has its line breaks escaped.
        let unspaced = capture(.text) { logger in logger.notice("x", metadata: ["a": "b\u{2028}c\u{85}d"]) }
        #expect(unspaced.first?.contains(#"a="b\u{2028}c\u{85}d""#) == true)
    }

    @Test func jsonLinesAreOneObjectEach() throws {
        let lines = capture(.json) { logger in
            logger.warning("database unavailable", metadata: ["error": "line one\nline two"], source: "Tessera")
        }
        let line = try #require(lines.first)
        #expect(lines.count == 1)
        #expect(line.filter { $0 == "\n" }.count == 1 && line.hasSuffix("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["message"] == "database unavailable")
        #expect(object["error"] == "line one\nline two")
        #expect(object["level"] == "warning")
        #expect(object["label"] == "tessera")
        #expect(object["source"] == "Tessera")
        #expect(object["timestamp"].flatMap { ISO8601DateFormatter().date(from: $0) } != nil)
    }

    @Test func eventsBelowTheLevelAreNotWritten() {
        let lines = capture(.text) { logger in
            logger.logLevel = .info
            logger.debug("authenticated")
            logger.info("token created")
        }
        #expect(lines.count == 1)
        #expect(lines.first?.contains("token created") == true)
    }
}
