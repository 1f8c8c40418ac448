import Foundation
import Logging
import PostgresNIO
import Testing
import TokenCrypto

@testable import Tessera

/// The PostgreSQL repository and the token service on a real server, one fresh database per test.
@Suite("PostgreSQL repository", .serialized)
struct PostgresRepositoryTests {
    private let logger = Fixtures.logger

    private func newToken(userID: String = "user123", digest: TokenDigest? = nil, minutes: Int = 60) -> NewToken {
        let token = AccessToken.generate(prefix: .default)
        return NewToken(
            userID: userID,
            scopes: ["read"],
            name: nil,
            digest: digest ?? TokenHasher(currentKey: Fixtures.hashKey).digest(of: token),
            displayPrefix: token.displayPrefix,
            lifetimeMinutes: minutes,
            createdBy: "admin"
        )
    }

    @Test func storedRowHoldsTheDigestAndMetadata() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let new = newToken()
            let record = try await repository.create(new, logger: logger)
            #expect(record.digest == new.digest)
            #expect(record.userID == "user123")
            #expect(record.scopes == ["read"])
            #expect(record.createdBy == "admin")
            #expect(abs(record.expiresAt.timeIntervalSince(record.createdAt) - 3600) < 1)
            #expect(try await repository.token(id: record.id, logger: logger) == record)
            #expect(try await repository.token(matchingAnyOf: [new.digest], logger: logger) == record)
        }
    }

    @Test func theCreatedRecordIsWhatAReadReturnsWithEveryFieldSet() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            var new = newToken()
            new.name = "deploy"
            new.scopes = ["repo:read", "repo:*"]
            new.policy = TokenPolicy(
                audiences: ["gateway"], allowedNetworks: [IPNetwork(cidr: "10.0.0.0/8")!, IPNetwork(cidr: "2001:db8::/32")!],
                meta: #"{"zeta":[1,"x",null],"a":{"b":true}}"#, enabled: false, maxUses: 9, refill: UsageRefill(amount: 3, every: .day),
                rateLimit: TokenPolicy.rateLimit(quota: 100, window: 60))
            let record = try await repository.create(new, logger: logger)
            #expect(record.policy.maxUses == 9 && record.usesLeft == 9 && record.name == "deploy" && record.policy.enabled == false)
            #expect(try await repository.token(id: record.id, logger: logger) == record)
        }
    }

    @Test func concurrentLookupsEachFindTheirOwnToken() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            var stored: [(TokenDigest, TokenRecord)] = []
            for index in 0..<60 {
                let new = newToken(userID: "user-\(index)")
                stored.append((new.digest, try await repository.create(new, logger: logger)))
            }
            let unknown = newToken().digest
            let lookups = stored
            // Far more callers than the one lookup allowed in flight: most share a statement with others.
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for round in 0..<5 {
                    for (digest, record) in lookups {
                        group.addTask {
                            let found = try await repository.token(matchingAnyOf: round.isMultiple(of: 2) ? [digest] : [unknown, digest], logger: logger)
                            return found == record ? 0 : 1
                        }
                    }
                    group.addTask { try await repository.token(matchingAnyOf: [unknown], logger: logger) == nil ? 0 : 1 }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
        }
    }

    @Test func concurrentCreationsShareStatementsAndEachGetsItsOwnRecordAndAuditRow() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let taken = try await repository.create(newToken(userID: "first"), logger: logger)
            // 120 creations at once, each by its own key, one of which reuses a stored digest: only that one fails.
            let outcomes = try await withThrowingTaskGroup(of: (NewToken, Result<TokenRecord, any Error>).self) { group in
                for index in 0..<120 {
                    var new = index == 60 ? newToken(userID: "burst-60", digest: taken.digest) : newToken(userID: "burst-\(index)")
                    new.createdBy = "key-\(index)"
                    let creation = new
                    group.addTask {
                        do { return (creation, .success(try await repository.create(creation, logger: logger))) } catch { return (creation, .failure(error)) }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            var created: [TokenRecord] = []
            for (new, outcome) in outcomes {
                switch outcome {
                case .success(let record):
                    #expect(record.userID == new.userID && record.digest == new.digest && record.createdBy == new.createdBy)
                    #expect(try await repository.token(id: record.id, logger: logger) == record)
                    created.append(record)
                case .failure(let error):
                    #expect(new.userID == "burst-60")
                    #expect(error as? StorageError == .duplicateDigest)
                }
            }
            #expect(created.count == 119)
            // Tokens created by one statement share its transaction's time: fewer times than tokens shows batches.
            #expect(Set(created.map(\.createdAtMicroseconds)).count < created.count)
            // Each token's audit row names the key, token and user of that token.
            let rows = try await client.query(
                "SELECT actor, token_id, user_id FROM audit_events WHERE action = 'token.create' AND user_id LIKE 'burst-%'")
            var audited: [String] = []
            for try await (actor, tokenID, userID) in rows.decode((String, UUID, String).self) { audited.append("\(actor) \(tokenID) \(userID)") }
            #expect(audited.sorted() == created.map { "\($0.createdBy) \($0.id) \($0.userID)" }.sorted())
        }
    }

    @Test func aSharedCreationStatementLeavesOutOnlyTheTakenDigests() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let taken = try await repository.create(newToken(userID: "first"), logger: logger)
            let fresh = newToken(userID: "fresh")
            let batch = [
                PendingCreation(token: newToken(userID: "reuses-a-stored-digest", digest: taken.digest)), PendingCreation(token: fresh),
                PendingCreation(token: newToken(userID: "reuses-a-digest-of-this-batch", digest: fresh.digest)),
            ]
            let outcomes = try await PostgresTokenRepository.insert(batch, client: client, logger: logger)
            #expect(outcomes.count == 3)
            #expect((try? outcomes[batch[1]]?.get())?.userID == "fresh")
            for refused in [batch[0], batch[2]] {
                #expect(throws: StorageError.duplicateDigest) { try outcomes[refused]?.get() }
            }
            #expect(try await repository.token(matchingAnyOf: [taken.digest], logger: logger) == taken)
        }
    }

    @Test func aValueTheDatabaseRefusesFailsOnlyItsOwnCreationInASharedStatement() async throws {
        try await TestDatabase.withDatabase { client, _ in
            var oversized = newToken(userID: "oversized")
            oversized.policy.meta = "\"" + String(repeating: "x", count: 5_000) + "\""  // past the column's 4 KiB check
            let batch = [PendingCreation(token: newToken(userID: "before")), PendingCreation(token: oversized), PendingCreation(token: newToken(userID: "after"))]
            let outcomes = try await PostgresTokenRepository.create(batch, client: client, logger: logger)
            let repository = PostgresTokenRepository(client: client)
            for pending in [batch[0], batch[2]] {
                let record = try #require(try outcomes[pending]?.get())
                #expect(try await repository.token(id: record.id, logger: logger) == record)
            }
            #expect((try? outcomes[batch[1]]?.get()) == nil && outcomes[batch[1]] != nil)
            #expect(try await repository.tokens(userID: "oversized", status: .all, limit: 10, after: nil, logger: logger).tokens.isEmpty)
        }
    }

    @Test func aDigestCanBeStoredOnlyOnce() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let first = newToken()
            _ = try await repository.create(first, logger: logger)
            await #expect(throws: StorageError.duplicateDigest) {
                try await repository.create(newToken(userID: "someone-else", digest: first.digest), logger: logger)
            }
        }
    }

    @Test func paginationHasNoGapsOrRepeats() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            var ids: [UUID] = []
            for _ in 0..<23 { ids.append(try await repository.create(newToken(userID: "pager"), logger: logger).id) }
            _ = try await repository.create(newToken(userID: "someone-else"), logger: logger)
            // Ties on created_at must be broken by id, not lose or repeat rows.
            try await client.query("UPDATE tokens SET created_at = '2026-01-01T00:00:00.123456Z' WHERE id = ANY(\(Array(ids[5..<15])))", logger: logger)

            var seen: [UUID] = []
            var cursor: TokenCursor? = nil
            var pages = 0
            repeat {
                let page = try await repository.tokens(userID: "pager", status: .all, limit: 5, after: cursor, logger: logger)
                #expect(page.tokens.count <= 5)
                seen += page.tokens.map(\.id)
                cursor = page.nextCursor.flatMap { TokenCursor(encoded: $0.encoded) }
                pages += 1
            } while cursor != nil && pages < 10
            #expect(seen.count == 23)
            #expect(Set(seen) == Set(ids))
            let order = try await client.query("SELECT id FROM tokens WHERE user_id = 'pager' ORDER BY created_at DESC, id DESC", logger: logger)
            var expected: [UUID] = []
            for try await id in order.decode(UUID.self) { expected.append(id) }
            #expect(seen == expected)
        }
    }

    /// Runs `body` with a repository on a pool of one connection, so that statements sent beside the repository's
    /// share its session, as they would a server connection behind a pooler; and the log it writes.
    private func withOneConnection(
        _ body: @escaping @Sendable (PostgresTokenRepository, PostgresClient, LogCapture, Logger) async throws -> Void
    ) async throws {
        try await TestDatabase.withDatabase { _, url in
            var configuration = url.clientConfiguration
            configuration.options.maximumConnections = 1
            let client = PostgresClient(configuration: configuration, backgroundLogger: Fixtures.logger)
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                let capture = LogCapture()
                try await body(PostgresTokenRepository(client: client), client, capture, capture.logger(level: .info))
            }
        }
    }

    /// The integer in the first row `query` answers, or -1 when it answers none.
    private func integer(_ query: PostgresQuery, on client: PostgresClient, logger: Logger) async throws -> Int {
        for try await value in try await client.query(query, logger: logger).decode(Int.self) { return value }
        return -1
    }

    /// How many of Tessera's statements the one connection has prepared.
    private func preparedCount(_ client: PostgresClient, logger: Logger) async throws -> Int {
        try await integer("SELECT count(*)::int8 FROM pg_prepared_statements WHERE name LIKE 'tessera_%'", on: client, logger: logger)
    }

    @Test func readsArePreparedOnceAndGoUnnamedWhenAPoolerLosesTheStatement() async throws {
        try await withOneConnection { repository, client, capture, logger in
            var created: [UUID] = []
            for _ in 0..<3 { created.append(try await repository.create(newToken(userID: "pooled"), logger: logger).id) }
            func listed() async throws -> [UUID] {
                try await repository.tokens(userID: "pooled", status: .all, limit: 10, after: nil, logger: logger).tokens.map(\.id)
            }

            #expect(Set(try await listed()) == Set(created))
            #expect(try await repository.token(id: created[0], logger: logger)?.id == created[0])
            #expect(try await preparedCount(client, logger: logger) == 2)
            #expect(repository.statements.isPreparing)

            // What a transaction pooler does: the next statement meets a server connection without them.
            try await client.query("DEALLOCATE ALL", logger: logger)
            #expect(Set(try await listed()) == Set(created))
            #expect(!repository.statements.isPreparing)
            #expect(capture.text.filter { $0.contains("did not keep a prepared statement") && $0.contains("26000") }.count == 1)
            #expect(try await repository.token(id: created[1], logger: logger)?.id == created[1])
            #expect(try await preparedCount(client, logger: logger) == 0)
        }
    }

    @Test func aStatementLeftStaleByASchemaChangeIsAnsweredAndItsConnectionReplaced() async throws {
        try await withOneConnection { repository, client, capture, logger in
            let created = try await repository.create(newToken(userID: "altered"), logger: logger)
            #expect(try await repository.token(id: created.id, logger: logger)?.id == created.id)
            func backendID() async throws -> Int { try await integer("SELECT pg_backend_pid()", on: client, logger: logger) }
            let before = try await backendID()

            // The prepared statement's result now has another type: PostgreSQL refuses it (0A000) until re-prepared.
            try await client.query("ALTER TABLE tokens ALTER COLUMN display_prefix TYPE varchar(64)", logger: logger)
            #expect(try await repository.token(id: created.id, logger: logger)?.displayPrefix == created.displayPrefix)
            #expect(capture.text.contains { $0.contains("went stale after a schema change") })
            #expect(try await backendID() != before)
            #expect(repository.statements.isPreparing)
            #expect(try await repository.token(id: created.id, logger: logger)?.id == created.id)
            #expect(try await preparedCount(client, logger: logger) == 1)
        }
    }

    @Test func aDeepPageStartsFromItsCursor() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            for _ in 0..<12 { _ = try await repository.create(newToken(userID: "deep"), logger: logger) }
            // Past PostgreSQL's first five custom plans, so the page statements run the plans they keep.
            var pages: [[UUID]] = []
            for _ in 0..<8 {
                var cursor: TokenCursor? = nil
                var ids: [UUID] = []
                repeat {
                    let page = try await repository.tokens(userID: "deep", status: .active, limit: 5, after: cursor, logger: logger)
                    ids += page.tokens.map(\.id)
                    cursor = page.nextCursor
                } while cursor != nil
                pages.append(ids)
            }
            #expect(pages.allSatisfy { $0.count == 12 && Set($0).count == 12 && $0 == pages[0] })
            // The plan a prepared statement keeps is the generic one: for a later page it must start in the index at
            // the cursor, not read every newer token and filter them.
            let plan = try await client.withConnection { connection in
                try await connection.query("SET plan_cache_mode = force_generic_plan", logger: logger)
                try await connection.query("PREPARE next_page AS \(unescaped: NextTokenPage.sql)", logger: logger)
                let rows = try await connection.query(
                    "EXPLAIN EXECUTE next_page('deep', 'all', 5, 0, '00000000-0000-0000-0000-000000000000')", logger: logger)
                var lines: [String] = []
                for try await line in rows.decode(String.self) { lines.append(line) }
                try await connection.query("DEALLOCATE next_page", logger: logger)
                try await connection.query("RESET plan_cache_mode", logger: logger)
                return lines.joined(separator: "\n")
            }
            #expect(plan.contains("Index Cond: ((user_id = $1) AND (ROW(created_at, id) < ROW("), "\(plan)")
        }
    }

    @Test func revokingTwiceIsIdempotentAndAuditedOnce() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let record = try await repository.create(newToken(), logger: logger)
            guard case .revoked(let revoked, lineage: []) = try await repository.revoke(id: record.id, by: "admin", logger: logger) else {
                Issue.record("first revoke did not revoke")
                return
            }
            #expect(revoked.revokedAt != nil)
            #expect(try await repository.revoke(id: record.id, by: "admin", logger: logger) == .alreadyRevoked(revoked))
            #expect(try await repository.revoke(id: UUID(), by: "admin", logger: logger) == .notFound)

            let rows = try await client.query(
                "SELECT action, actor FROM audit_events WHERE token_id = \(record.id) ORDER BY id", logger: logger)
            var audit: [String] = []
            for try await (action, actor) in rows.decode((String, String).self) { audit.append("\(action) by \(actor)") }
            #expect(audit == ["token.create by admin", "token.revoke by admin"])

            // Details recorded with a revocation read back through the audit listing.
            let reported = try await repository.create(newToken(), logger: logger)
            _ = try await repository.revoke(id: reported.id, by: "secret-scanning:github", details: ["url": "https://example/x"], logger: logger)
            let page = try await repository.auditEvents(AuditQuery(tokenID: reported.id, limit: 10), logger: logger)
            #expect(page.events.first?.details == ["url": "https://example/x"] && page.events.last?.details == [:])
        }
    }

    @Test func expiryIsEnforcedOnVerifyAndInListings() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let service = TokenService(repository: repository, hasher: TokenHasher(currentKey: Fixtures.hashKey), prefix: .default)
            let caller = Caller(name: "admin", role: .admin)
            let (expiring, record) = try await service.issue(TokenRequest(userID: "exp", scopes: [], lifetimeMinutes: 1), by: caller, logger: logger)
            let (otherToken, other) = try await service.issue(TokenRequest(userID: "exp", scopes: [], lifetimeMinutes: 60), by: caller, logger: logger)
            #expect(try await service.verify(expiring.secret, logger: logger) == .active(record))
            #expect(try await service.verify(otherToken.secret, logger: logger) == .active(other))

            try await client.query("UPDATE tokens SET expires_at = now() - interval '1 second' WHERE id = \(record.id)", logger: logger)
            #expect(try await service.verify(expiring.secret, logger: logger) == .inactive(.expired))
            // Verifying two hours ahead sees the other, hour-long, token expired too, without touching the database clock.
            #expect(try await service.verify(otherToken.secret, at: Date().addingTimeInterval(7200), logger: logger) == .inactive(.expired))
            #expect(try await service.verify(otherToken.secret, logger: logger) == .active(other))

            let expired = try await repository.tokens(userID: "exp", status: .expired, limit: 10, after: nil, logger: logger)
            #expect(expired.tokens.map(\.id) == [record.id])
            let active = try await repository.tokens(userID: "exp", status: .active, limit: 10, after: nil, logger: logger)
            #expect(active.tokens.map(\.id) == [other.id])
            _ = try await repository.revoke(id: record.id, by: "admin", logger: logger)
            #expect(try await service.verify(expiring.secret, logger: logger) == .inactive(.revoked))
            let revoked = try await repository.tokens(userID: "exp", status: .revoked, limit: 10, after: nil, logger: logger)
            #expect(revoked.tokens.map(\.id) == [record.id])
        }
    }

    @Test func oldKeyTokensVerifyAndAreRehashedToTheCurrentKey() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let oldKey = HashKey.generate(id: 1)
            let newKey = HashKey.generate(id: 2)
            let caller = Caller(name: "admin", role: .admin)
            let before = TokenService(repository: repository, hasher: TokenHasher(currentKey: oldKey), prefix: .default)
            let (token, record) = try await before.issue(TokenRequest(userID: "rot", scopes: [], lifetimeMinutes: 60), by: caller, logger: logger)
            #expect(record.digest.keyID == 1)

            let rotated = TokenService(repository: repository, hasher: TokenHasher(currentKey: newKey, previousKeys: [oldKey]), prefix: .default)
            guard case .active = try await rotated.verify(token.secret, logger: logger) else {
                Issue.record("old-key token did not verify")
                return
            }
            let stored = try #require(try await repository.token(id: record.id, logger: logger))
            #expect(stored.digest == TokenHasher(currentKey: newKey).digest(of: token))

            // Once rehashed, the old key is no longer needed for this token.
            let newOnly = TokenService(repository: repository, hasher: TokenHasher(currentKey: newKey), prefix: .default)
            guard case .active = try await newOnly.verify(token.secret, logger: logger) else {
                Issue.record("rehashed token did not verify under the new key alone")
                return
            }
            #expect(try await before.verify(token.secret, logger: logger) == .inactive(.notFound))
        }
    }
}

@Suite("PostgreSQL rotation, usage and purge", .serialized)
struct PostgresLifecycleTests {
    private let logger = Fixtures.logger
    private let caller = Caller(name: "admin", role: .admin)

    private func service(_ repository: PostgresTokenRepository) -> TokenService {
        TokenService(repository: repository, hasher: TokenHasher(currentKey: Fixtures.hashKey), prefix: .default)
    }

    @Test func rotationKeepsUserScopesAndExpiryAndAuditsBothTokens() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let tokens = service(repository)
            let (old, oldRecord) = try await tokens.issue(TokenRequest(userID: "rot", scopes: ["a", "b"], lifetimeMinutes: 600, name: "ci"), by: caller, logger: logger)
            let (new, newRecord) = try await tokens.rotate(id: oldRecord.id, gracePeriod: 120, by: caller, logger: logger)
            #expect(newRecord.userID == "rot" && newRecord.scopes == ["a", "b"] && newRecord.name == "ci")
            #expect(newRecord.expiresAt == oldRecord.expiresAt)
            let limited = try #require(try await repository.token(id: oldRecord.id, logger: logger))
            #expect(abs(limited.expiresAt.timeIntervalSinceNow - 120) < 5)
            guard case .active = try await tokens.verify(old.secret, logger: logger), case .active = try await tokens.verify(new.secret, logger: logger) else {
                Issue.record("both tokens should verify during the grace period")
                return
            }
            let rows = try await client.query(
                "SELECT action, details->>'replacedBy', details->>'rotatedFrom' FROM audit_events WHERE action <> 'token.create' OR token_id = \(newRecord.id) ORDER BY id",
                logger: logger)
            var audit: [String] = []
            for try await (action, replacedBy, rotatedFrom) in rows.decode((String, String?, String?).self) {
                audit.append("\(action) \(replacedBy ?? "-") \(rotatedFrom ?? "-")")
            }
            #expect(audit == ["token.rotate \(newRecord.id.lowercasedString) -", "token.create - \(oldRecord.id.lowercasedString)"])

            _ = try await repository.revoke(id: newRecord.id, by: "admin", logger: logger)
            await #expect(throws: RotationError.notActive(.revoked)) { try await tokens.rotate(id: newRecord.id, gracePeriod: 0, by: caller, logger: logger) }
            await #expect(throws: RotationError.notFound) { try await tokens.rotate(id: UUID(), gracePeriod: 0, by: caller, logger: logger) }
        }
    }

    @Test func revokingATokenRevokesItsWholeRotationLineage() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let tokens = service(repository)
            let (first, a) = try await tokens.issue(TokenRequest(userID: "line", scopes: [], lifetimeMinutes: 600), by: caller, logger: logger)
            let (second, b) = try await tokens.rotate(id: a.id, gracePeriod: 3600, by: caller, logger: logger)
            let (third, c) = try await tokens.rotate(id: b.id, gracePeriod: 3600, by: caller, logger: logger)
            let (other, _) = try await tokens.issue(TokenRequest(userID: "line", scopes: [], lifetimeMinutes: 600), by: caller, logger: logger)
            // Metadata shows both links.
            #expect(try await repository.token(id: a.id, logger: logger)?.replacedBy == b.id)
            let middle = try #require(try await repository.token(id: b.id, logger: logger))
            #expect(middle.replaces == a.id && middle.replacedBy == c.id)
            #expect(c.replaces == b.id && c.replacedBy == nil)

            // Revoking the middle one ends the grace of the one it replaced and revokes the one that replaced it.
            guard case .revoked(_, let lineage) = try await tokens.revoke(id: b.id, by: caller, logger: logger) else {
                Issue.record("the middle token should have been revoked")
                return
            }
            #expect(Set(lineage) == [a.id, c.id])
            for token in [first, second, third] { #expect(try await tokens.verify(token.secret, logger: logger) == .inactive(.revoked)) }
            guard case .active = try await tokens.verify(other.secret, logger: logger) else {
                Issue.record("a token outside the lineage must stay active")
                return
            }
            let rows = try await client.query(
                "SELECT token_id, details->>'revokedWith' FROM audit_events WHERE action = 'token.revoke' ORDER BY id", logger: logger)
            var audit: [UUID: String?] = [:]
            for try await (id, with) in rows.decode((UUID, String?).self) { audit[id] = with }
            #expect(audit == [b.id: nil, a.id: b.id.lowercasedString, c.id: b.id.lowercasedString])
        }
    }

    @Test func aRotationRacingARevocationNeverLeavesALiveReplacement() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let tokens = service(repository)
            for trial in 0..<20 {
                let user = "race\(trial)"
                let (_, a) = try await tokens.issue(TokenRequest(userID: user, scopes: [], lifetimeMinutes: 600), by: caller, logger: logger)
                let (_, b) = try await tokens.rotate(id: a.id, gracePeriod: 3600, by: caller, logger: logger)
                // Revokes of both ends and a rotation of the live one, at once: each finishes (no deadlock, no
                // database error), and whichever order they took, no token of the lineage is left active.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { _ = try await tokens.revoke(id: a.id, by: caller, logger: logger) }
                    group.addTask { _ = try await tokens.revoke(id: b.id, by: caller, logger: logger) }
                    group.addTask {
                        do {
                            _ = try await tokens.rotate(id: b.id, gracePeriod: 3600, by: caller, logger: logger)
                        } catch RotationError.notActive(.revoked) {
                            // The revocation came first.
                        }
                    }
                    try await group.waitForAll()
                }
                let page = try await repository.tokens(userID: user, status: .active, limit: 10, after: nil, logger: logger)
                #expect(page.tokens.isEmpty, "trial \(trial) left \(page.tokens.map(\.id)) active")
            }
        }
    }

    @Test func usesOnlyEverMoveLastUsedForward() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let (_, record) = try await service(repository).issue(TokenRequest(userID: "use", scopes: [], lifetimeMinutes: 60), by: caller, logger: logger)
            let later = Date(timeIntervalSince1970: 1_900_000_000)
            let earlier = Date(timeIntervalSince1970: 1_800_000_000)
            try await repository.recordUses([record.id: later, UUID(): later], logger: logger)
            try await repository.recordUses([record.id: earlier], logger: logger)
            #expect(try await repository.token(id: record.id, logger: logger)?.lastUsedAt == later)
        }
    }

    @Test func purgeDeletesOnlyLongDeadTokensAndKeepsTheAuditTrail() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let tokens = service(repository)
            var ids: [UUID] = []
            for _ in 0..<4 { ids.append(try await tokens.issue(TokenRequest(userID: "old", scopes: [], lifetimeMinutes: 60), by: caller, logger: logger).record.id) }
            try await client.query("UPDATE tokens SET expires_at = now() - interval '40 days' WHERE id = \(ids[0])", logger: logger)
            try await client.query("UPDATE tokens SET expires_at = now() - interval '1 day' WHERE id = \(ids[1])", logger: logger)
            try await client.query("UPDATE tokens SET revoked_at = now() - interval '31 days' WHERE id = \(ids[2])", logger: logger)
            #expect(try await repository.purge(olderThan: 30 * 86_400, by: "cli:test", logger: logger) == 2)
            let left = try await repository.tokens(userID: "old", status: .all, limit: 10, after: nil, logger: logger).tokens.map(\.id)
            #expect(Set(left) == [ids[1], ids[3]])
            let audit = try await repository.auditEvents(AuditQuery(limit: 100), logger: logger).events
            #expect(audit.filter { $0.action == "token.create" }.count == 4)
            let purge = try #require(audit.first)
            #expect(purge.action == "tokens.purge" && purge.actor == "cli:test")
            // About no one token or user: what was deleted, and under which cut-off.
            #expect(purge.tokenID == nil && purge.userID == nil)
            #expect(purge.details == ["deleted": "2", "olderThanSeconds": "\(30 * 86_400)"])
        }
    }
}
