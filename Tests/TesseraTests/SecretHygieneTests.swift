import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

@testable import Tessera

/// The API over PostgreSQL: issued tokens never reach a table, a list or a read.
@Suite("Secrets at rest", .serialized)
struct SecretHygieneTests {
    private let logger = Fixtures.logger

    @Test func noTableHoldsAnIssuedTokenAndNoReadShowsOne() async throws {
        try await TestDatabase.withDatabase { client, url in
            let app = buildApplication(try Fixtures.configuration(databaseURL: url), repository: PostgresTokenRepository(client: client), logger: logger)
            let tokens = try await app.test(.router) { client in
                let api = APIClient(client: client)
                var tokens: [String] = []
                for index in 0..<10 {
                    let created = try await api.createToken(userID: "user\(index % 3)")
                    let token = try #require(created["token"] as? String)
                    tokens.append(token)
                    #expect(try await api.verify(token)["active"] as? Bool == true)
                    let read = try await api.send(.get, "/api/tokens/\(created["id"] as! String)")
                    #expect(read.status == .ok)
                    #expect(!read.text.contains(token))
                    if index == 0 { _ = try await api.send(.delete, "/api/tokens/\(created["id"] as! String)") }
                }
                for user in 0..<3 {
                    let list = try await api.send(.get, "/api/tokens?userId=user\(user)")
                    // A real listing (user0 holds four of the ten tokens, the others three each), not an error body.
                    #expect((list.json["tokens"] as? [[String: Any]])?.count == (user == 0 ? 4 : 3))
                    for token in tokens { #expect(!list.text.contains(token)) }
                }
                return tokens
            }

            let tables = try await client.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'", logger: logger)
            var names: [String] = []
            for try await name in tables.decode(String.self) { names.append(name) }
            #expect(Set(names).isSuperset(of: ["tokens", "audit_events", "schema_migrations"]))
            var scannedRows = 0
            for name in names {
                // Every column of every row as text, bytea rendered as hex and as escaped text.
                let rows = try await client.query("SELECT t::text FROM \(unescaped: "\"\(name)\"") AS t", logger: logger)
                for try await text in rows.decode(String.self) {
                    scannedRows += 1
                    for token in tokens {
                        #expect(!text.contains(token), "table \(name) holds an issued token")
                        #expect(!text.contains(String(token.dropFirst(4).prefix(20))), "table \(name) holds part of a token body")
                    }
                }
            }
            #expect(scannedRows >= 10 + 11 + 2)
        }
    }

    @Test func productionApplicationMigratesAndServesOverTheWire() async throws {
        let migrations = try TestDatabase.migrations()
        try await TestDatabase.withDatabase(migrated: false) { _, url in
            let app = buildApplication(try Fixtures.configuration(databaseURL: url), migrations: migrations, migrateFirst: true, logger: logger)
            try await app.test(.live) { client in
                let api = APIClient(client: client)
                let created = try await api.createToken(userID: "wire")
                let token = try #require(created["token"] as? String)
                #expect(try await api.verify(token, requiredScopes: ["read"])["active"] as? Bool == true)
                #expect(try await api.send(.delete, "/api/tokens/\(created["id"] as! String)").status == .noContent)
                #expect(try await api.verify(token)["code"] as? String == "REVOKED")
            }
        }
    }
}
