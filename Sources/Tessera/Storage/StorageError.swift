import Logging
import PostgresNIO

/// Failures storage reports in its own terms, so no layer above it sees a database driver's errors.
public enum StorageError: Error, Equatable, CustomStringConvertible {
    /// A token with the same digest is already stored.
    case duplicateDigest
    /// The database cannot be reached, is shutting down or overloaded, or did not answer in time: retry later.
    case unavailable(String)
    /// A statement that always returns a row returned none.
    case missingRow

    public var description: String {
        switch self {
        case .duplicateDigest: "a token with this digest is already stored"
        case .unavailable(let reason): "the database is unavailable: \(reason)"
        case .missingRow: "a statement returned no row"
        }
    }

    /// Runs `operation`, turning a failure that means the database is unavailable into ``unavailable(_:)``.
    static func translating<Result>(_ operation: () async throws -> Result) async throws -> Result {
        do {
            return try await operation()
        } catch where DatabaseUnavailable.describes(error) {
            throw StorageError.unavailable(String(reflecting: error))
        }
    }
}

/// Recognises errors that mean PostgreSQL cannot be reached now, as opposed to a fault in a query.
enum DatabaseUnavailable {
    /// SQLSTATE classes and codes that mean "try again later": connection exceptions, shutdowns, overload.
    private static let transientStates: Set<String> = ["57P01", "57P02", "57P03", "53300", "53400"]

    /// Whether `error` says the database is unreachable, shutting down or overloaded.
    static func describes(_ error: any Error) -> Bool {
        if error is DeadlineExceeded { return true }
        if let error = error as? PostgresTransactionError {
            // BEGIN, COMMIT or ROLLBACK failing, or the work inside failing, for one of the reasons below.
            return [error.beginError, error.closureError, error.commitError, error.rollbackError].contains { $0.map(describes) ?? false }
        }
        // The pool's own errors (circuit breaker open: PostgreSQL has been unreachable for a while) come from
        // PostgresNIO's underscored module, which is not API; recognise them by type name.
        if String(reflecting: type(of: error)).hasSuffix("ConnectionPoolError") { return true }
        guard let error = error as? PSQLError else { return false }
        guard let state = error.serverInfo?[.sqlState] else {
            return [.connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled]
                .contains(error.code)
        }
        return state.hasPrefix("08") || transientStates.contains(state)
    }
}
