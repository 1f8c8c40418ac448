import Foundation

/// Reads the fields of a JSON object, collecting a ``FieldError`` for each one that is missing, unknown or invalid.
struct FieldReader {
    private let object: [String: JSONValue]
    private(set) var errors: [FieldError] = []

    /// Starts reading `object`, reporting every key not in `allowed` as unknown.
    init(_ object: [String: JSONValue], allowed: Set<String>) {
        self.object = object
        guard object.keys.contains(where: { !allowed.contains($0) }) else { return }
        for key in object.keys.sorted() where !allowed.contains(key) {
            errors.append(FieldError(field: key, message: "is not a known field; allowed fields are \(allowed.sorted().joined(separator: ", "))"))
        }
    }

    /// Records an error against `field`.
    mutating func fail(_ field: String, _ message: String) {
        errors.append(FieldError(field: field, message: message))
    }

    /// The string at `field`, or `nil` after recording why not (absent optional fields record nothing).
    mutating func string(_ field: String, required: Bool) -> String? {
        switch object[field] {
        case .string(let value): return value
        case nil, .null?:
            if required { fail(field, "is required") }
            return nil
        case let other?:
            fail(field, "must be a string, not a \(other.typeName)")
            return nil
        }
    }

    /// The raw value at `field`, if any.
    func value(_ field: String) -> JSONValue? {
        object[field]
    }

    /// The Boolean at `field`, or `nil` after recording why not.
    mutating func bool(_ field: String) -> Bool? {
        switch object[field] {
        case .bool(let value): return value
        case nil: return nil
        case let other?:
            fail(field, "must be true or false, not \(other.typeName)")
            return nil
        }
    }

    /// The integer at `field`, or `nil` after recording why not.
    mutating func integer(_ field: String, required: Bool, in range: ClosedRange<Int>) -> Int? {
        switch object[field] {
        case .integer(let value) where range.contains(value): return value
        case nil, .null?:
            if required { fail(field, "is required: an integer from \(range.lowerBound) to \(range.upperBound)") }
            return nil
        default:
            fail(field, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
    }

    /// The array of strings at `field` (each read by `element`), or `nil` after recording why not.
    mutating func strings(_ field: String) -> [String]? {
        switch object[field] {
        case nil, .null?: return nil
        case .array(let values):
            var strings: [String] = []
            for (index, value) in values.enumerated() {
                guard case .string(let string) = value else {
                    fail("\(field)[\(index)]", "must be a string, not a \(value.typeName)")
                    continue
                }
                strings.append(string)
            }
            return strings.count == values.count ? strings : nil
        case let other?:
            fail(field, "must be an array of strings, not a \(other.typeName)")
            return nil
        }
    }
}
