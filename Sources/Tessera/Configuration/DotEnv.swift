#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reads `KEY=VALUE` lines from a `.env` file: `#` comments, optional `export`, single or double quotes.
enum DotEnv {
    /// Parses the text of a `.env` file; lines that are not assignments are ignored.
    static func parse(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst("export ".count)) }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let quote = value.first, quote == "\"" || quote == "'", value.last == quote {
                value = String(value.dropFirst().dropLast())
            } else if let comment = value.range(of: " #") {
                value = value[..<comment.lowerBound].trimmingCharacters(in: .whitespaces)
            }
            guard !key.isEmpty else { continue }
            values[key] = value
        }
        return values
    }

    /// The process environment over the `.env` file at `path` (when present): real variables win.
    static func environment(overlaying path: String = ".env", on environment: [String: String]) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else { return environment }
        return parse(String(decoding: data, as: UTF8.self)).merging(environment) { _, real in real }
    }
}

/// The process environment over `.env` in the working directory, when there is one: real variables win.
public func environmentWithDotEnv(_ environment: [String: String]) -> [String: String] {
    DotEnv.environment(overlaying: ".env", on: environment)
}
