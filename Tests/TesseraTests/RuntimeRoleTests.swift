import Foundation
import Logging
import PostgresNIO
import Testing
import TokenCrypto

@testable import Tessera

/// `tessera serve` can run as a role that may do its work and nothing else, while `tessera migrate` is the owner.
@Suite("Least-privilege runtime role", .serialized)
struct RuntimeRoleTests {
    private let logger = Fixtures.logger
    private let caller = Caller(name: "admin", role: .admin)

    @Test func theRuntimeRoleServesButCannotRewriteTheAuditTrailOrTheSchema() async throws {
        try await TestDatabase.withDatabase { owner, url in
            let logger = logger
            let caller = caller
            let role = "tessera_rt_\(Hex.encode(SecureRandom.bytes(count: 6)))"
            let password = Hex.encode(SecureRandom.bytes(count: 16))
            try await owner.query("CREATE ROLE \(unescaped: role) LOGIN PASSWORD '\(unescaped: password)'", logger: logger)
            do {
                let migrator = Migrator(client: owner, migrations: try TestDatabase.migrations())
                await #expect(throws: MigrationError.roleMissing("tessera_nobody")) { try await migrator.grantRuntimePrivileges(to: "tessera_nobody", logger: logger) }
                await #expect(throws: MigrationError.badRoleName("x; drop table tokens")) {
                    try await migrator.grantRuntimePrivileges(to: "x; drop table tokens", logger: logger)
                }
                await #expect(throws: MigrationError.roleIsOwner(url.username)) { try await migrator.grantRuntimePrivileges(to: url.username, logger: logger) }
                try await migrator.grantRuntimePrivileges(to: role, logger: logger)
                try await migrator.grantRuntimePrivileges(to: role, logger: logger)  // again, as every migrate does

                var runtimeURL = url
                runtimeURL.username = role
                runtimeURL.password = password
                try await withPostgresClient(runtimeURL, logger: logger) { client in
                    // Everything serving does.
                    try await Migrator(client: client, migrations: try TestDatabase.migrations()).checkSchemaIsCurrent(logger: logger)
                    let repository = PostgresTokenRepository(client: client)
                    let service = TokenService(repository: repository, hasher: TokenHasher(currentKey: Fixtures.hashKey), prefix: .default)
                    let (token, record) = try await service.issue(TokenRequest(userID: "rt", scopes: ["a"], lifetimeMinutes: 60), by: caller, logger: logger)
                    guard case .active = try await service.verify(token.secret, logger: logger) else {
                        Issue.record("the runtime role could not verify")
                        return
                    }
                    let (_, replacement) = try await service.rotate(id: record.id, gracePeriod: 60, by: caller, logger: logger)
                    guard case .revoked = try await service.revoke(id: replacement.id, by: caller, logger: logger) else {
                        Issue.record("the runtime role could not revoke")
                        return
                    }
                    try await repository.recordUses([record.id: Date()], logger: logger)
                    _ = try await repository.purge(olderThan: 0, by: "cli:test", logger: logger)
                    #expect(try await repository.auditEvents(AuditQuery(limit: 50), logger: logger).events.count >= 4)
                    let limiter = PostgresRateLimitStore(policy: RateLimitPolicy(name: "t", quota: 5, window: 60), client: client)
                    #expect(try await limiter.acquire("k", logger: logger).allowed)
                    try await PostgresRateLimitStore.sweep(client: client, logger: logger)
                    let feed = InvalidationFeed(client: client, observers: [], logger: logger)
                    let position = try await feed.poll(after: nil)
                    #expect(try await feed.poll(after: position) >= position)
                    try await client.query("DELETE FROM token_invalidations WHERE occurred_at < now() - interval '1 hour'", logger: logger)

                    // Nothing else.
                    for statement in [
                        "UPDATE audit_events SET actor = 'someone else'",
                        "DELETE FROM audit_events",
                        "TRUNCATE audit_events",
                        "TRUNCATE tokens",
                        "ALTER TABLE tokens ADD COLUMN note text",
                        "DROP TABLE rate_limits",
                        "CREATE TABLE elsewhere (x int)",
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'x', 'x')",
                    ] {
                        do {
                            try await client.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                            Issue.record("the runtime role was allowed to run: \(statement)")
                        } catch let error as PSQLError {
                            #expect(error.serverInfo?[.sqlState] == "42501", "\(statement): \(String(reflecting: error))")
                        }
                    }
                }
            } catch {
                try? await Self.dropRole(role, using: owner)
                throw error
            }
            try await Self.dropRole(role, using: owner)
        }
    }

    private static func dropRole(_ role: String, using owner: PostgresClient) async throws {
        try await owner.query("DROP OWNED BY \(unescaped: role)", logger: Fixtures.logger)
        try await owner.query("DROP ROLE \(unescaped: role)", logger: Fixtures.logger)
    }
}
