import Logging
import NIOConcurrencyHelpers

/// Collects every log line, with its metadata, for tests that read what was logged.
final class LogCapture: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    /// A logger at `level` whose lines land here.
    func logger(level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: "capture") { label in CapturingHandler(capture: self, label: label) }
        logger.logLevel = level
        return logger
    }

    /// Everything logged so far, one entry a line.
    var text: [String] { lines.withLockedValue { $0 } }

    fileprivate func append(_ line: String) {
        lines.withLockedValue { $0.append(line) }
    }
}

private struct CapturingHandler: LogHandler {
    let capture: LogCapture
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        capture.append("\(event.level) \(label) \(event.message) \(all)")
    }
}
