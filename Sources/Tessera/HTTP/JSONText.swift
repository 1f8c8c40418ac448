import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Hand-written JSON output for the verification answers, the created token and the token list, where
/// `JSONEncoder` and its ISO 8601 date formatting dominated the profile. Everything is written straight into the
/// response buffer, in as few writes as it can; the output matches what `JSONEncoder.api` writes: sorted keys,
/// `2026-01-02T03:04:05Z` dates.
enum JSONText {
    private static let contentType = HTTPField(name: .contentType, value: "application/json; charset=utf-8")

    /// A `200` answer whose JSON `body` was written here.
    static func response(_ body: ByteBuffer) -> Response {
        var headers = HTTPFields()
        headers.reserveCapacity(12)  // room for the security, request id and rate limit fields added on the way out
        headers.append(contentType)
        headers.append(HTTPField(name: .contentLength, value: String(body.readableBytes)))
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }

    /// Writes `text` as a JSON string literal, quotes included: in one write when nothing needs escaping.
    static func write(_ text: String, to buffer: inout ByteBuffer) {
        let written = text.withUTF8Bytes { utf8 in
            guard utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) else { return false }
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: utf8.count + 2) { output in
                output[0] = UInt8(ascii: "\"")
                UnsafeMutableRawBufferPointer(rebasing: output[1...]).copyMemory(from: UnsafeRawBufferPointer(utf8))
                output[utf8.count + 1] = UInt8(ascii: "\"")
                return utf8.count + 2
            }
            return true
        }
        guard !written else { return }
        buffer.writeInteger(UInt8(ascii: "\""))
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
                buffer.writeInteger(hexDigit(UInt8(scalar.value >> 4)))
                buffer.writeInteger(hexDigit(UInt8(scalar.value & 0xF)))
            default: buffer.writeString(String(scalar))
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// Writes `text` as a JSON string, or `null`.
    static func write(orNull text: String?, to buffer: inout ByteBuffer) {
        if let text { write(text, to: &buffer) } else { buffer.writeStaticString("null") }
    }

    /// Writes `values` as a JSON array of strings, or `null`.
    static func write(orNull values: [String]?, to buffer: inout ByteBuffer) {
        if let values { write(values, to: &buffer) } else { buffer.writeStaticString("null") }
    }

    /// Writes `id` as a JSON string, or `null`.
    static func write(orNull id: UUID?, to buffer: inout ByteBuffer) {
        if let id { write(id, to: &buffer) } else { buffer.writeStaticString("null") }
    }

    /// Writes `date` as a JSON string, or `null`.
    static func write(orNull date: Date?, to buffer: inout ByteBuffer) {
        if let date { write(date, to: &buffer) } else { buffer.writeStaticString("null") }
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
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 38) { output in
            var text = FixedText(output)
            text.append(UInt8(ascii: "\""))
            withUnsafeBytes(of: id.uuid) { bytes in
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
                    text.append(hexDigit(byte >> 4))
                    text.append(hexDigit(byte & 0xF))
                }
            }
            text.append(UInt8(ascii: "\""))
            assert(text.count == 38)
            return text.count
        }
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
        guard (1_000...9_999).contains(year) else {
            // Not a date this service stores; spelled the long way.
            let time = "\(twoDigits(secondOfDay / 3_600)):\(twoDigits(secondOfDay % 3_600 / 60)):\(twoDigits(secondOfDay % 60))"
            buffer.writeString("\"\(String(year))-\(twoDigits(month))-\(twoDigits(day))T\(time)Z\"")
            return
        }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 22) { output in
            var text = FixedText(output)
            text.append(UInt8(ascii: "\""))
            text.append(digits: year, count: 4)
            text.append(UInt8(ascii: "-"))
            text.append(digits: month, count: 2)
            text.append(UInt8(ascii: "-"))
            text.append(digits: day, count: 2)
            text.append(UInt8(ascii: "T"))
            text.append(digits: secondOfDay / 3_600, count: 2)
            text.append(UInt8(ascii: ":"))
            text.append(digits: secondOfDay % 3_600 / 60, count: 2)
            text.append(UInt8(ascii: ":"))
            text.append(digits: secondOfDay % 60, count: 2)
            text.append(UInt8(ascii: "Z"))
            text.append(UInt8(ascii: "\""))
            assert(text.count == 22)
            return text.count
        }
    }

    /// `value` (0-99) as two digits.
    private static func twoDigits(_ value: Int64) -> String {
        value < 10 ? "0\(value)" : String(value)
    }

    /// The lower-case hexadecimal digit for `nibble` (0-15).
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// Bytes written into a buffer's spare capacity, sized by the caller.
    private struct FixedText {
        let output: UnsafeMutableRawBufferPointer
        var count = 0

        init(_ output: UnsafeMutableRawBufferPointer) {
            self.output = output
        }

        mutating func append(_ byte: UInt8) {
            output[count] = byte
            count += 1
        }

        /// The last `count` decimal digits of a non-negative `value`, zero-padded.
        mutating func append(digits value: Int64, count: Int) {
            var remaining = value
            for position in stride(from: self.count + count - 1, through: self.count, by: -1) {
                output[position] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            }
            self.count += count
        }
    }
}
