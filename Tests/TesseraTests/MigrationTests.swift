import Foundation
import PostgresNIO
import Testing

@testable import Tessera

@Suite("Migrations", .serialized)
struct MigrationTests {
    private let logger = Fixtures.logger

    @Test func anEmptyDatabaseIsOutdatedUntilMigrated() async throws {
        let migrations = try TestDatabase.migrations()
        try await TestDatabase.withDatabase(migrated: false) { client, _ in
            let migrator = Migrator(client: client, migrations: migrations)
            await #expect(throws: MigrationError.outdated(pending: migrations.map(\.name))) {
                try await migrator.checkSchemaIsCurrent(logger: logger)
            }
            #expect(try await migrator.migrate(logger: logger) == migrations.map(\.name))
            try await migrator.checkSchemaIsCurrent(logger: logger)
            #expect(try await migrator.migrate(logger: logger) == [])
        }
    }

    @Test func instancesMigratingAtOnceApplyEachMigrationOnce() async throws {
        let migrations = try TestDatabase.migrations()
        try #require(!migrations.isEmpty)
        try await TestDatabase.withDatabase(migrated: false) { client, url in
            let applied = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<4 {
                    group.addTask { try await Migrator.migrate(url, migrations: migrations, logger: logger) }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(applied.sorted() == migrations.map(\.name).sorted())
            let count = try await client.query("SELECT count(*) FROM schema_migrations", logger: logger)
            var counts: [Int] = []
            for try await rows in count.decode(Int.self) { counts.append(rows) }
            #expect(counts == [migrations.count])
        }
    }

    @Test func anEditedMigrationIsRefused() async throws {
        var edited = try TestDatabase.migrations()
        edited[0] = Migration(version: edited[0].version, name: edited[0].name, sql: edited[0].sql + "\n-- edited")
        let migrations = edited
        try await TestDatabase.withDatabase { client, _ in
            let migrator = Migrator(client: client, migrations: migrations)
            await #expect(throws: MigrationError.edited(name: migrations[0].name)) { try await migrator.checkSchemaIsCurrent(logger: logger) }
            await #expect(throws: MigrationError.edited(name: migrations[0].name)) { try await migrator.migrate(logger: logger) }
        }
    }

    @Test func scriptsSplitAtTopLevelSemicolonsOnly() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE a (b text DEFAULT 'x;y');
            CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
            -- trailing comment
            """
        let statements = SQLScript.statements(in: script)
        #expect(statements.count == 2)
        #expect(statements[0].hasSuffix("DEFAULT 'x;y')"))
        #expect(statements[1].contains("$body$ SELECT 1; $body$"))
    }
}
