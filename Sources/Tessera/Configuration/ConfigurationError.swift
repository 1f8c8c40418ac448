/// A missing or malformed setting; `description` is the one line printed when start-up stops.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// The variable at fault, such as `TOKEN_HASH_KEY`.
    public let variable: String
    /// What is wrong with it, in words an operator can act on; never the value itself.
    public let problem: String

    /// Creates an error naming `variable`.
    public init(_ variable: String, _ problem: String) {
        self.variable = variable
        self.problem = problem
    }

    public var description: String { "configuration error: \(variable) \(problem)" }
}
