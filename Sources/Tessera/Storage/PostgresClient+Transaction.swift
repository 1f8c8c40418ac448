import Logging
import PostgresNIO

extension PostgresClient {
    /// Runs `body` in a transaction; when `body` throws and the rollback succeeds, its own error is rethrown
    /// rather than PostgresNIO's wrapper, so callers can match domain errors and SQL states directly.
    func inTransaction<Result: Sendable>(
        logger: Logger,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        do {
            return try await withTransaction(logger: logger, body)
        } catch let error as PostgresTransactionError {
            if let closureError = error.closureError, error.beginError == nil, error.rollbackError == nil {
                throw closureError
            }
            throw error
        }
    }
}
