import Foundation
import NIOCore

/// Hand-written JSON output for the verification answers, the hot path, where `JSONEncoder` and its ISO 8601
/// date formatting dominated the profile. Everything is written straight into the response buffer; the output
/// matches what `JSONEncoder.api` writes: sorted keys, `2026-01-02T03:04:05Z` dates.
enum JSONText {
    /// Writes `text` as a JSON string literal, quotes included.
    static func write(_ text: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            buffer.writeString(text)
        } else {
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": buffer.writeStaticString("\\\"")
                case "\\": buffer.writeStaticString("\\\\")
                case "\n": buffer.writeStaticString("\\n")
                case "\r": buffer.writeStaticString("\\r")
                case "\t": buffer.writeStaticString("\\t")
                case "\u{08}": buffer.writeStaticString("\\b")
                case "\u{0C}": buffer.writeStaticString("\\f")
                case _ where scalar.value < 0x20:
                    buffer.writeStaticString("\\u00")
                    buffer.writeInteger(hexDigits[Int(scalar.value >> 4)])
                    buffer.writeInteger(hexDigits[Int(scalar.value & 0xF)])
                default: buffer.writeString(String(scalar))
                }
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// Writes an array of strings.
    static func write(_ values: [String], to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            write(value, to: &buffer)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    /// Writes `id` as a JSON string, lower case, as `UUID.uuidString.lowercased()` spells it.
    static func write(_ id: UUID, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        withUnsafeBytes(of: id.uuid) { bytes in
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { buffer.writeInteger(UInt8(ascii: "-")) }
                buffer.writeInteger(hexDigits[Int(byte >> 4)])
                buffer.writeInteger(hexDigits[Int(byte & 0xF)])
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// Writes `date` as a JSON string in UTC, to the second: `"2026-01-02T03:04:05Z"`.
    static func write(_ date: Date, to buffer: inout ByteBuffer) {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        buffer.writeInteger(UInt8(ascii: "\""))
        if (1_000...9_999).contains(year) { writeDigits(year, count: 4, to: &buffer) } else { buffer.writeString(String(year)) }
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(month, count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "-"))
        writeDigits(day, count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "T"))
        writeDigits(secondOfDay / 3_600, count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(secondOfDay % 3_600 / 60, count: 2, to: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(secondOfDay % 60, count: 2, to: &buffer)
        buffer.writeStaticString("Z\"")
    }

    /// Writes the last `count` decimal digits of a non-negative `value`, zero-padded.
    private static func writeDigits(_ value: Int64, count: Int, to buffer: inout ByteBuffer) {
        var divisor: Int64 = 1
        for _ in 1..<count { divisor *= 10 }
        while divisor > 0 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(value / divisor % 10))
            divisor /= 10
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}
