import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import Testing
import TokenCrypto

@testable import Tessera

@Suite("Audit trail and logs", .serialized)
struct AuditAndLoggingTests {
    @Test func auditListsCreatesAndRevokesNewestFirstWithFilters() async throws {
        try await TestDatabase.withDatabase { client, url in
            let app = buildApplication(
                try Fixtures.configuration(databaseURL: url), repository: PostgresTokenRepository(client: client), logger: Fixtures.logger)
            try await app.test(.router) { client in
                let api = APIClient(client: client)
                let first = try #require(try await api.createToken(userID: "audited")["id"] as? String)
                let second = try #require(try await api.createToken(userID: "other")["id"] as? String)
                _ = try await api.send(.delete, "/api/tokens/\(first)")
                _ = try await api.send(.delete, "/api/tokens/\(first)")  // no change, no second row

                let all = try await api.send(.get, "/api/audit").json["events"] as? [[String: Any]] ?? []
                #expect(all.map { "\($0["action"]!) \($0["tokenId"]!)" } == ["token.revoke \(first)", "token.create \(second)", "token.create \(first)"])
                #expect(all.allSatisfy { $0["actor"] as? String == "admin" })

                let forToken = try await api.send(.get, "/api/audit?tokenId=\(first)").json["events"] as? [[String: Any]] ?? []
                #expect(forToken.map { "\($0["action"]!) \($0["tokenId"]!)" } == ["token.revoke \(first)", "token.create \(first)"])
                let forUser = try await api.send(.get, "/api/audit?userId=other").json["events"] as? [[String: Any]] ?? []
                #expect(forUser.compactMap { $0["tokenId"] as? String } == [second])

                let page = try await api.send(.get, "/api/audit?limit=2").json
                #expect((page["events"] as? [[String: Any]])?.count == 2)
                let cursor = try #require(page["nextCursor"] as? String)
                let rest = try await api.send(.get, "/api/audit?limit=2&cursor=\(cursor)").json
                #expect((rest["events"] as? [[String: Any]])?.count == 1)
                #expect(rest["nextCursor"] is NSNull)

                #expect(try await api.send(.get, "/api/audit?tokenId=nope&cursor=-1").fieldErrors.keys.sorted() == ["cursor", "tokenId"])
                #expect(try await api.send(.get, "/api/audit", key: Fixtures.verifierKey).status == .forbidden)
            }
        }
    }

    @Test func aFailedCreateLeavesNeitherTokenNorAuditRow() async throws {
        try await TestDatabase.withDatabase { client, _ in
            let repository = PostgresTokenRepository(client: client)
            let token = AccessToken.generate(prefix: .default)
            let new = NewToken(
                userID: "dup", scopes: [], name: nil, digest: TokenHasher(currentKey: Fixtures.hashKey).digest(of: token),
                displayPrefix: token.displayPrefix, lifetimeMinutes: 5, createdBy: "admin")
            _ = try await repository.create(new, logger: Fixtures.logger)
            await #expect(throws: StorageError.duplicateDigest) { try await repository.create(new, logger: Fixtures.logger) }
            let tokenRows = try await client.query("SELECT count(*) FROM tokens WHERE user_id = 'dup'", logger: Fixtures.logger)
            var tokenCounts: [Int] = []
            for try await count in tokenRows.decode(Int.self) { tokenCounts.append(count) }
            #expect(tokenCounts == [1])  // the first create's token only
            let auditRows = try await client.query("SELECT count(*) FROM audit_events WHERE user_id = 'dup'", logger: Fixtures.logger)
            var auditCounts: [Int] = []
            for try await count in auditRows.decode(Int.self) { auditCounts.append(count) }
            #expect(auditCounts == [1])  // the first create's audit row only
        }
    }

    @Test func traceLogsNeverContainTokensOrAPIKeys() async throws {
        let capture = LogCapture()
        let logger = capture.logger(level: .trace)
        let canaryKey = "canary-api-key-7f3a9c2e51"
        try await TestDatabase.withDatabase { _, url in
            var configuration = try Fixtures.configuration(databaseURL: url)
            configuration.logLevel = .trace
            let postgres = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
            let app = buildApplication(configuration, repository: PostgresTokenRepository(client: postgres), services: [postgres], logger: logger)
            let issued = try await app.test(.live) { client in
                let api = APIClient(client: client)
                var issued: [String] = []
                for index in 0..<3 {
                    let created = try await api.createToken(userID: "canary\(index)")
                    let token = try #require(created["token"] as? String)
                    issued.append(token)
                    _ = try await api.verify(token, requiredScopes: ["read"])
                    _ = try await api.send(.get, "/api/tokens?userId=canary\(index)")
                    _ = try await api.send(.get, "/api/tokens/\(created["id"] as! String)")
                    _ = try await api.send(.delete, "/api/tokens/\(created["id"] as! String)")
                    _ = try await api.verify(token)
                }
                _ = try await api.send(.get, "/api/tokens?userId=x", key: canaryKey)
                _ = try await api.send(.get, "/api/tokens?userId=x", key: nil, headers: [.authorization: "Bearer \(canaryKey)"])
                _ = try await api.send(.post, "/api/tokens/verify", key: Fixtures.verifierKey, json: #"{"token":"\#(issued[0])x"}"#)
                return issued
            }
            let lines = capture.text
            #expect(lines.count > 50, "trace logging produced \(lines.count) lines")
            for secret in issued + [canaryKey, Fixtures.adminKey, Fixtures.verifierKey] {
                let leaks = lines.filter { $0.contains(secret) }
                #expect(leaks.isEmpty, "a log line holds a secret: \(leaks.first ?? "")")
                // Nor any long part of one: a token body minus its display prefix.
                let body = String(secret.dropFirst(8).prefix(24))
                #expect(!lines.contains { $0.contains(body) }, "a log line holds part of a secret")
            }
        }
    }
}
