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
    /// Revokes the token with `id`, recording a `token.revoke` audit row (with `details`) when its state changes.
    func revoke(id: UUID, by actor: String, details: [String: String], logger: Logger) async throws -> RevocationOutcome
    /// Makes `changes` to the token `id` unless it is revoked or they break ``TokenChanges/refusals(for:at:)``,
    /// recording a `token.update` audit row; decided under the same lock as every other change.
    func update(id: UUID, with changes: TokenChanges, by actor: String, logger: Logger) async throws -> UpdateOutcome
    /// Revokes every active token of `userID` in one transaction, with one `tokens.revoke` audit row; returns
    /// their ids.
    func revokeAll(userID: String, by actor: String, logger: Logger) async throws -> [UUID]
    /// Issues a new token in place of the active token `id`: same user, scopes, name and expiry, stored under
    /// `digest`; the old token's expiry becomes at most `graceSeconds` from now. Audited as `token.rotate` (old) and
    /// `token.create` (new) in the same transaction.
    func rotate(id: UUID, to digest: TokenDigest, displayPrefix: String, graceSeconds: Int, by actor: String, logger: Logger) async throws
        -> RotationOutcome
    /// Sets `lastUsedAt` of each token to its time, unless a later time is stored already.
    func recordUses(_ uses: [UUID: Date], logger: Logger) async throws
    /// Deletes tokens that expired, or were revoked, more than `age` seconds ago; audit rows stay, and one
    /// `tokens.purge` row records the purge. Returns how many were deleted.
    func purge(olderThan age: Int, by actor: String, logger: Logger) async throws -> Int
    /// A page of the audit trail, newest first.
    func auditEvents(_ query: AuditQuery, logger: Logger) async throws -> AuditPage
    /// Replaces a token's digest made under an old key with `newDigest`, if it still holds `oldDigest`.
    func rehash(id: UUID, from oldDigest: TokenDigest, to newDigest: TokenDigest, logger: Logger) async throws
    /// Spends one use of a usage-limited token, refilling it first when a refill is due; returns the uses left, or
    /// `nil` when none was (the token is unchanged then). One atomic decision, exact under concurrency.
    func spendUse(of id: UUID, logger: Logger) async throws -> Int?
}

extension TokenRepository {
    /// Revokes the token with `id`, recording a `token.revoke` audit row when its state changes.
    public func revoke(id: UUID, by actor: String, logger: Logger) async throws -> RevocationOutcome {
        try await revoke(id: id, by: actor, details: [:], logger: logger)
    }
}
