import Foundation
import NIOCore

/// Any JSON value, parsed without a schema (by ``JSONParser``) so that every field can be checked and reported at once.
enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The JSON type name, for messages such as "must be a string, not a number".
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .integer, .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension JSONValue: Encodable {
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        case .object(let members): try container.encode(members)
        }
    }

    /// The value as compact JSON with sorted keys: how a token's `meta` is stored and written out.
    var compactText: String {
        var buffer = ByteBuffer()
        write(to: &buffer)
        return String(buffer: buffer)
    }

    private func write(to buffer: inout ByteBuffer) {
        switch self {
        case .null: buffer.writeStaticString("null")
        case .bool(let value): buffer.writeString(value ? "true" : "false")
        case .integer(let value): buffer.writeString(String(value))
        case .number(let value): buffer.writeString(value.description)
        case .string(let value): JSONText.write(value, to: &buffer)
        case .array(let values):
            buffer.writeStaticString("[")
            for (index, value) in values.enumerated() {
                if index > 0 { buffer.writeStaticString(",") }
                value.write(to: &buffer)
            }
            buffer.writeStaticString("]")
        case .object(let members):
            buffer.writeStaticString("{")
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { buffer.writeStaticString(",") }
                JSONText.write(key, to: &buffer)
                buffer.writeStaticString(":")
                members[key]!.write(to: &buffer)
            }
            buffer.writeStaticString("}")
        }
    }
}
