import Hummingbird

/// Reads query parameters, collecting a ``FieldError`` for each one that is unknown or invalid.
struct QueryReader {
    private let parameters: Parameters
    private(set) var errors: [FieldError] = []

    /// Starts reading, reporting every parameter not in `allowed` as unknown.
    init(_ parameters: Parameters, allowed: Set<String>) {
        self.parameters = parameters
        for (key, _) in parameters where !allowed.contains(String(key)) {
            errors.append(FieldError(field: String(key), message: "is not a known parameter; allowed are \(allowed.sorted().joined(separator: ", "))"))
        }
    }

    /// Records an error against `field`.
    mutating func fail(_ field: String, _ message: String) {
        errors.append(FieldError(field: field, message: message))
    }

    /// The raw value of `name`, if present; an empty value (`?cursor=`) is present, and fails validation.
    func value(_ name: String) -> String? {
        parameters.get(name)
    }

    /// A user id filter, validated like the `userId` of a token.
    mutating func userID(required: Bool) -> String? {
        guard let userID = value("userId") else {
            if required { fail("userId", "is required") }
            return nil
        }
        if let problem = TextRules.userIDProblem(userID) {
            fail("userId", problem)
            return nil
        }
        return userID
    }

    /// The page size: digits only, within `1...maximum`, `standard` when absent.
    mutating func limit(default standard: Int, maximum: Int) -> Int {
        guard let text = value("limit") else { return standard }
        guard text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }), let limit = Int(text), (1...maximum).contains(limit) else {
            fail("limit", "must be an integer from 1 to \(maximum)")
            return standard
        }
        return limit
    }

    /// The value of `name` decoded by `decode`, recording `message` when it does not decode.
    mutating func decoded<Value>(_ name: String, message: String, _ decode: (String) -> Value?) -> Value? {
        guard let text = value(name) else { return nil }
        guard let decoded = decode(text) else {
            fail(name, message)
            return nil
        }
        return decoded
    }
}
