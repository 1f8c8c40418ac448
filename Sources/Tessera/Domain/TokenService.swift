import Foundation
import Logging
import TokenCrypto

/// A validated request to issue a token.
public struct TokenRequest: Sendable, Equatable {
    /// The user the token is for.
    public var userID: String
    /// What the token may do.
    public var scopes: [String]
    /// Minutes until it expires.
    public var lifetimeMinutes: Int
    /// An optional label.
    public var name: String?
    /// Its audiences, networks and data.
    public var policy: TokenPolicy

    /// Creates a request; callers validate the fields first.
    public init(userID: String, scopes: [String], lifetimeMinutes: Int, name: String? = nil, policy: TokenPolicy = TokenPolicy()) {
        self.userID = userID
        self.scopes = scopes
        self.lifetimeMinutes = lifetimeMinutes
        self.name = name
        self.policy = policy
    }
}

/// Issues and verifies tokens: the format, the keyed hash and the repository brought together.
public final class TokenService: Sendable {
    let repository: any TokenRepository
    let hasher: TokenHasher
    let prefix: TokenPrefix
    let usage: UsageRecorder?
    let metrics: ServiceMetrics?
    let cache: VerificationCache?
    /// Where tokens' own rate limits are counted.
    let tokenLimits: any RateLimitStore

    /// Creates a service issuing tokens with `prefix`; successful verifications are noted in `usage`, verified
    /// records are kept in `cache`, if given, and tokens' own rate limits are counted in `tokenLimits` (this
    /// process's memory by default).
    public convenience init(
        repository: any TokenRepository,
        hasher: TokenHasher,
        prefix: TokenPrefix,
        usage: UsageRecorder? = nil,
        cache: VerificationCache? = nil,
        tokenLimits: (any RateLimitStore)? = nil
    ) {
        self.init(
            repository: repository, hasher: hasher, prefix: prefix, usage: usage, metrics: nil, cache: cache,
            tokenLimits: tokenLimits ?? RateLimiters(RateLimitSettings()).tokens)
    }

    init(
        repository: any TokenRepository,
        hasher: TokenHasher,
        prefix: TokenPrefix,
        usage: UsageRecorder?,
        metrics: ServiceMetrics?,
        cache: VerificationCache?,
        tokenLimits: any RateLimitStore
    ) {
        self.repository = repository
        self.hasher = hasher
        self.prefix = prefix
        self.usage = usage
        self.metrics = metrics
        self.cache = cache
        self.tokenLimits = tokenLimits
    }

    /// Issues a token: only its digest is stored, and the secret is returned once the row is committed.
    public func issue(_ request: TokenRequest, by caller: Caller, logger: Logger) async throws -> (token: AccessToken, record: TokenRecord) {
        let token = AccessToken.generate(prefix: prefix)
        let record = try await repository.create(
            NewToken(
                userID: request.userID,
                scopes: request.scopes,
                name: request.name,
                digest: hasher.digest(of: token),
                displayPrefix: token.displayPrefix,
                lifetimeMinutes: request.lifetimeMinutes,
                createdBy: caller.name,
                policy: request.policy
            ),
            logger: logger
        )
        logger.info(
            "token created",
            metadata: ["token.id": "\(record.id.lowercasedString)", "token.prefix": "\(record.displayPrefix)", "caller": "\(caller.name)"]
        )
        return (token, record)
    }

    /// Verifies `candidate`: malformed text never reaches the database or spends `budget`, and a token found under
    /// an old key is rehashed.
    ///
    /// A token that names audiences or networks is checked against `verifier`; without one it is refused.
    public func verify(
        _ candidate: String, requiredScopes: [String] = [], at now: Date = Date(), by verifier: Verifier? = nil, spending budget: BudgetCharge? = nil,
        logger: Logger
    ) async throws -> Verification {
        let verification = try await evaluate(candidate, requiredScopes: requiredScopes, at: now, verifier: verifier, budget: budget, logger: logger)
        metrics?.recordVerification(verification)
        if case .active(let record) = verification { usage?.noteUse(of: record, at: now) }
        return verification
    }

    private func evaluate(
        _ candidate: String, requiredScopes: [String], at now: Date, verifier: Verifier?, budget: BudgetCharge?, logger: Logger
    ) async throws -> Verification {
        guard let token = AccessToken(parsing: candidate) else { return .inactive(.malformed) }
        try await budget?.spend(logger: logger)
        let current = hasher.digest(of: token)
        var record: TokenRecord
        if let cached = cache?.record(for: current.bytes) {
            record = cached
        } else {
            let ticket = cache?.ticket()
            guard var found = try await repository.token(matchingAnyOf: hasher.candidateDigests(of: token), logger: logger) else {
                return .inactive(.notFound)
            }
            if found.digest.keyID != hasher.currentKey.id {
                try await repository.rehash(id: found.id, from: found.digest, to: current, logger: logger)
                logger.info("token rehashed to the current key", metadata: ["token.id": "\(found.id.lowercasedString)", "hash_key.from": "\(found.digest.keyID)"])
                found.digest = current
            }
            if let ticket { cache?.store(found, digest: current.bytes, ticket: ticket) }
            record = found
        }
        switch record.status(at: now) {
        case .revoked: return .inactive(.revoked)
        case .expired: return .inactive(.expired)
        case .active: break
        }
        if let refusal = Self.refusal(by: record.policy, to: verifier) { return .inactive(refusal) }
        if let limit = record.policy.rateLimit {
            // Every verification the token's other rules let through counts, a missing scope's included; a refused
            // one spends no use. The budget is kept per token and limit, so a changed limit starts afresh.
            let decision = try await tokenLimits.acquire("\(record.id.lowercasedString)/\(limit.text)", under: limit, logger: logger)
            guard decision.allowed else { return .rateLimited(limit, decision) }
            record.rateLimitDecision = decision
        }
        guard requiredScopes.allSatisfy({ Scope.covers(record.scopes, $0) }) else { return .inactive(.insufficientScope) }
        guard record.policy.maxUses != nil else { return .active(record) }
        // The last check, so only an otherwise successful verification spends a use; decided by the database, so
        // exact across instances, whatever the cache holds.
        guard let left = try await repository.spendUse(of: record.id, logger: logger) else { return .inactive(.usageExceeded) }
        var spent = record
        spent.usesLeft = left
        return .active(spent)
    }

    /// Why `policy` refuses `verifier`, or `nil` when it allows it: a paused token, a verifier outside its audiences,
    /// an end client outside its networks (or of unknown address).
    static func refusal(by policy: TokenPolicy, to verifier: Verifier?) -> InactiveReason? {
        guard policy.enabled else { return .disabled }
        if let audiences = policy.audiences, !audiences.contains(where: { $0 == verifier?.name }) { return .wrongAudience }
        if let networks = policy.allowedNetworks {
            guard let address = verifier?.clientAddress.flatMap(IPNetwork.parseAddress), networks.contains(where: { $0.contains(address) })
            else { return .ipNotAllowed }
        }
        return nil
    }

    /// Whether the verification cache answers now: `off` when there is none, `bypassed` while the invalidation feed
    /// is not current.
    public var cacheStatus: VerificationCacheStatus {
        guard let cache else { return .off }
        return cache.isServing ? .serving : .bypassed
    }

    /// The token `id`, or `nil`.
    public func token(id: UUID, logger: Logger) async throws -> TokenRecord? {
        try await repository.token(id: id, logger: logger)
    }

    /// A page of `userID`'s tokens, newest first, starting after `cursor`.
    public func tokens(userID: String, status: TokenStatusFilter, limit: Int, after cursor: TokenCursor?, logger: Logger) async throws -> TokenPage {
        try await repository.tokens(userID: userID, status: status, limit: limit, after: cursor, logger: logger)
    }

    /// A page of the audit trail, newest first.
    public func auditEvents(_ query: AuditQuery, logger: Logger) async throws -> AuditPage {
        try await repository.auditEvents(query, logger: logger)
    }

    /// Revokes the token `id` and the rest of its rotation lineage, evicting them from this instance's cache
    /// before answering (other instances hear of it through the invalidation log).
    public func revoke(id: UUID, by caller: Caller, logger: Logger) async throws -> RevocationOutcome {
        try await revoke(id: id, actor: caller.name, details: [:], logger: logger)
    }

    /// Handles a report that `candidate` leaked at `url`: an active token of this service is revoked with its rotation
    /// lineage, audited under `reporter`, and leaves every cache as any revocation does.
    public func reportLeak(_ candidate: String, url: String?, reporter: String, logger: Logger) async throws -> LeakVerdict {
        guard let token = AccessToken(parsing: candidate),
            let record = try await repository.token(matchingAnyOf: hasher.candidateDigests(of: token), logger: logger)
        else { return .notOurs }
        guard record.status(at: Date()) == .active else { return .ours(revoked: false) }
        var details = ["reportedBy": reporter]
        if let url { details["url"] = url }
        guard case .revoked = try await revoke(id: record.id, actor: reporter, details: details, logger: logger) else { return .ours(revoked: false) }
        logger.notice("leaked token revoked", metadata: ["token.id": "\(record.id.lowercasedString)", "reporter": "\(reporter)", "url": "\(url ?? "")"])
        return .ours(revoked: true)
    }

    private func revoke(id: UUID, actor: String, details: [String: String], logger: Logger) async throws -> RevocationOutcome {
        let outcome = try await repository.revoke(id: id, by: actor, details: details, logger: logger)
        cache?.invalidate(tokenID: id)
        if case .revoked(_, let lineage) = outcome {
            for member in lineage { cache?.invalidate(tokenID: member) }
            var metadata: Logger.Metadata = ["token.id": "\(id.lowercasedString)", "caller": "\(actor)"]
            if !lineage.isEmpty { metadata["token.lineage"] = "\(lineage.map(\.lowercasedString).joined(separator: ","))" }
            logger.info("token revoked", metadata: metadata)
        }
        return outcome
    }

    /// Makes `changes` to token `id`, evicting it from this instance's cache before answering (others hear of it
    /// through the invalidation log, as of a revocation).
    public func update(id: UUID, with changes: TokenChanges, by caller: Caller, logger: Logger) async throws -> UpdateOutcome {
        let outcome = try await repository.update(id: id, with: changes, by: caller.name, logger: logger)
        cache?.invalidate(tokenID: id)
        if case .updated = outcome {
            logger.info(
                "token updated", metadata: ["token.id": "\(id.lowercasedString)", "fields": "\(changes.fieldNames.joined(separator: ","))", "caller": "\(caller.name)"])
        }
        return outcome
    }

    /// Revokes every active token of `userID` at once (incident response), evicting each from this instance's cache
    /// before answering; returns how many were revoked.
    public func revokeAll(userID: String, by caller: Caller, logger: Logger) async throws -> Int {
        let revoked = try await repository.revokeAll(userID: userID, by: caller.name, logger: logger)
        for id in revoked {
            cache?.invalidate(tokenID: id)
            // One line a token, as for a single revocation: after a restore, these lines are what re-applies it.
            logger.info("token revoked", metadata: ["token.id": "\(id.lowercasedString)", "caller": "\(caller.name)", "batch": "every active token of the user"])
        }
        logger.notice("every active token of a user revoked", metadata: ["count": "\(revoked.count)", "caller": "\(caller.name)"])
        return revoked.count
    }

    /// Replaces an active token with a new one (same user, scopes, name and expiry), shown once; the old token
    /// stays valid for at most `gracePeriod` more.
    public func rotate(id: UUID, gracePeriod: Int, by caller: Caller, logger: Logger) async throws -> (token: AccessToken, record: TokenRecord) {
        let token = AccessToken.generate(prefix: prefix)
        let outcome = try await repository.rotate(
            id: id,
            to: hasher.digest(of: token),
            displayPrefix: token.displayPrefix,
            graceSeconds: gracePeriod,
            by: caller.name,
            logger: logger
        )
        cache?.invalidate(tokenID: id)
        switch outcome {
        case .notFound: throw RotationError.notFound
        case .notActive(let status): throw RotationError.notActive(status)
        case .alreadyRotated: throw RotationError.alreadyRotated
        case .rotated(let record):
            logger.info(
                "token rotated",
                metadata: ["token.id": "\(id.lowercasedString)", "token.new_id": "\(record.id.lowercasedString)", "caller": "\(caller.name)"]
            )
            return (token, record)
        }
    }
}
