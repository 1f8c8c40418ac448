import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import Tessera

/// The log line format: `StreamLogHandler`'s, with UTC timestamps and each line written whole.
@Suite("Line log handler")
struct LineLogHandlerTests {
    private func capture(_ body: (inout Logger) -> Void) -> [String] {
        let lines = NIOLockedValueBox<[String]>([])
        var logger = Logger(label: "tessera") { label in
            LineLogHandler(label: label, destination: .lines { line in lines.withLockedValue { $0.append(line) } })
        }
        body(&logger)
        return lines.withLockedValue { $0 }
    }

    @Test func aValueSetOnTheLoggerIsFormattedOnceWhenSet() throws {
        final class CountedID: CustomStringConvertible, Sendable {
            let formatted = NIOLockedValueBox(0)
            var description: String {
                formatted.withLockedValue { $0 += 1 }
                return "id-1"
            }
        }
        let id = CountedID()
        let lines = capture { logger in
            logger[metadataKey: "hb.request.id"] = .stringConvertible(id)
            logger.info("one")
            logger.info("two")
            #expect(logger[metadataKey: "hb.request.id"]?.description == "id-1")
        }
        #expect(lines.count == 2)
        #expect(lines.allSatisfy { $0.contains(" hb.request.id=id-1 ") })
        #expect(id.formatted.withLockedValue { $0 } == 1)
    }

    @Test func aLineHasTimeLevelLabelSortedMetadataSourceAndMessage() throws {
        let lines = capture { logger in
            logger[metadataKey: "hb.request.id"] = "abc"
            logger[metadataKey: "caller"] = "first"
            logger.info("authenticated", metadata: ["caller": "admin", "client": "127.0.0.1"], source: "Tessera")
        }
        #expect(lines.count == 1)
        let line = try #require(lines.first)
        #expect(line.hasSuffix(" info tessera: caller=admin client=127.0.0.1 hb.request.id=abc [Tessera] authenticated\n"))
        let timestamp = String(line.prefix(while: { $0 != " " }))
        #expect(timestamp.count == 24)
        #expect(timestamp.hasSuffix("+0000"))
        let parsed = try #require(ISO8601DateFormatter().date(from: timestamp.replacingOccurrences(of: "+0000", with: "Z")))
        #expect(abs(parsed.timeIntervalSinceNow) < 5)
    }

    /// A line longer than the handler's stack buffer is written whole, including a value that crosses its end.
    @Test func aLineLongerThanTheStackBufferIsWrittenWhole() throws {
        let long = String(repeating: "é0123456789", count: 150)  // 1,800 bytes
        let lines = capture { logger in
            logger.info("long", metadata: ["value": .string(long)], source: "Tessera")
        }
        let line = try #require(lines.first)
        #expect(line.hasSuffix(" info tessera: value=\(long) [Tessera] long\n"))
        #expect(line.utf8.count > 1_024)
    }

    @Test func levelsBelowTheThresholdAreNotWritten() {
        let lines = capture { logger in
            logger.logLevel = .warning
            logger.info("quiet")
            logger.warning("loud")
        }
        #expect(lines.count == 1)
        #expect(lines.first?.contains("warning tessera: [") == true)
    }

    @Test(.timeLimit(.minutes(1))) func infoLinesArriveWithinTheIntervalAndWarningsAtOnce() throws {
        let pipe = Pipe()
        let writer = LogWriter(descriptor: pipe.fileHandleForWriting.fileDescriptor)
        let logger = Logger(label: "tessera") { LineLogHandler(label: $0, destination: .writer(writer)) }
        let reader = pipe.fileHandleForReading
        logger.warning("at once", source: "Tessera")
        // A warning is written before `warning` returns: it is readable without waiting for the flusher.
        #expect(String(decoding: reader.availableData, as: UTF8.self).hasSuffix("warning tessera: [Tessera] at once\n"))
        logger.info("soon", source: "Tessera")
        // The background flusher writes it within the interval (availableData blocks until it does).
        #expect(String(decoding: reader.availableData, as: UTF8.self).hasSuffix("info tessera: [Tessera] soon\n"))
        try pipe.fileHandleForWriting.close()
    }

    @Test func linesWithoutMetadataHaveNoFields() {
        let lines = capture { logger in logger.error("plain", source: "Tessera") }
        #expect(lines.first?.hasSuffix(" error tessera: [Tessera] plain\n") == true)
    }

    @Test func eachLineReachesTheFileDescriptorWhole() throws {
        let pipe = Pipe()
        let writer = LogWriter(descriptor: pipe.fileHandleForWriting.fileDescriptor)
        let logger = Logger(label: "tessera") { LineLogHandler(label: $0, destination: .writer(writer)) }
        DispatchQueue.concurrentPerform(iterations: 200) { index in
            logger.info("line \(index)", metadata: ["index": "\(index)"], source: "Tessera")
        }
        writer.flush()
        try pipe.fileHandleForWriting.close()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 200)
        for line in lines {
            let index = try #require(line.split(separator: " ").last)
            #expect(line.hasSuffix("index=\(index) [Tessera] line \(index)"))
        }
    }
}
