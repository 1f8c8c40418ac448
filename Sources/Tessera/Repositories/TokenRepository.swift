import Foundation
import Logging
import TokenCrypto

/// Storage of tokens and of the audit trail that records every change to them.
public protocol TokenRepository: Sendable {
    /// Stores a new token and its `token.create` audit row in one transaction.
    func create(_ token: NewToken, logger: Logger) async throws -> TokenRecord
    /// The token with `id`, or `nil`.
    func token(id: UUID, logger: Logger) async throws -> TokenRecord?
    /// The token whose stored digest is any of `digests`, or `nil`.
    func token(matchingAnyOf digests: [TokenDigest], logger: Logger) async throws -> TokenRecord?
    /// A page of `userID`'s tokens, newest first, starting after `cursor`.
    func tokens(userID: String, status: TokenStatusFilter, limit: Int, after cursor: TokenCursor?, logger: Logger) async throws -> TokenPage
    /// Revokes the token with `id`, recording a `token.revoke` audit row when its state changes.
    func revoke(id: UUID, by actor: String, logger: Logger) async throws -> RevocationOutcome
    /// A page of the audit trail, newest first.
    func auditEvents(_ query: AuditQuery, logger: Logger) async throws -> AuditPage
    /// Replaces a token's digest made under an old key with `newDigest`, if it still holds `oldDigest`.
    func rehash(id: UUID, from oldDigest: TokenDigest, to newDigest: TokenDigest, logger: Logger) async throws
}

/// Failures a repository reports in terms of the domain rather than the database.
public enum RepositoryError: Error, Equatable {
    /// A token with the same digest is already stored.
    case duplicateDigest
}
