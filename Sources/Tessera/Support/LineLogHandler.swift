import Foundation
import Logging

/// Writes each log event as exactly one line, as text or as one JSON object (`LOG_FORMAT`).
///
/// swift-log's `StreamLogHandler` writes metadata values as they are, so a client's newline in a logged value
/// would split one event over two lines and could forge a second one; here every value is escaped.
public struct LineLogHandler: LogHandler {
    /// How a line is written.
    public enum Format: String, Sendable, CaseIterable {
        /// `2026-11-30T15:00:00Z info tessera: caller=admin detail="two words" [Tessera] message`.
        case text
        /// `{"caller":"admin","label":"tessera","level":"info","message":"...","source":"Tessera","timestamp":"..."}`.
        case json
    }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: Format
    private let write: @Sendable (String) -> Void

    /// A handler writing `format` lines labelled `label` to `write` (standard error unless given).
    public init(label: String, format: Format = .text, write: @escaping @Sendable (String) -> Void = Self.writeToStandardError) {
        self.label = label
        self.format = format
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let explicit = event.metadata { fields.merge(explicit) { $1 } }
        if let error = event.error {
            fields["error.message"] = "\(error)"
            fields["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        let timestamp = Date().formatted(.iso8601)
        switch format {
        case .text:
            var line = "\(timestamp) \(event.level) \(label):"
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
                line += " \(Self.escapedText(key))=\(Self.escapedText(value.description))"
            }
            write(line + " [\(Self.escapedText(event.source))] \(Self.escapedControlCharacters(event.message.description))\n")
        case .json:
            var object = fields.mapValues(\.description)
            object["timestamp"] = timestamp
            object["level"] = event.level.rawValue
            object["label"] = label
            object["source"] = event.source
            object["message"] = event.message.description
            let data = (try? Self.encoder.encode(object)) ?? Data(#"{"message":"unencodable log event"}"#.utf8)
            write(String(decoding: data, as: UTF8.self) + "\n")
        }
    }

    /// Text as it stands when it is plain, else quoted with `"`, `\`, and control characters escaped.
    static func escapedText(_ text: String) -> String {
        let plain = !text.isEmpty && text.unicodeScalars.allSatisfy { $0 != " " && !breaksLines($0) && $0 != "\"" && $0 != "\\" && $0 != "=" }
        return plain ? text : "\"" + escapedControlCharacters(text, quotes: true) + "\""
    }

    /// Text with control characters and line separators escaped (and `"` and `\`, with `quotes`), so it stays on one line.
    static func escapedControlCharacters(_ text: String, quotes: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: { breaksLines($0) || (quotes && ($0 == "\"" || $0 == "\\")) }) else {
            return text
        }
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"" where quotes: escaped += "\\\""
            case "\\" where quotes: escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where breaksLines(scalar):
                escaped += "\\u{\(String(scalar.value, radix: 16))}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// Whether `scalar` is a control character or a line or paragraph separator: what a terminal or a log shipper
    /// may take for the end of a line.
    private static func breaksLines(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Writes `line` to standard error in one `write`.
    @Sendable public static func writeToStandardError(_ line: String) {
        FileHandle.standardError.write(Data(line.utf8))
    }
}
