import Foundation

/// Encodes an absent optional as an explicit JSON `null` rather than leaving the key out, so every response
/// has the same keys.
@propertyWrapper
struct EncodesNull<Value: Encodable & Sendable & Equatable>: Encodable, Sendable, Equatable {
    var wrappedValue: Value?

    init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

extension UUID {
    /// The UUID in the lower-case form the API uses.
    var lowercasedString: String { uuidString.lowercased() }
}
