import Foundation
import Logging
import PostgresNIO
import TokenCrypto

/// One forward-only schema change: a numbered SQL file in `migrations/`.
public struct Migration: Sendable, Equatable {
    /// The number the file name starts with; migrations apply in this order.
    public let version: Int
    /// The file name without its extension, such as `0001_create_tokens`.
    public let name: String
    /// The file's SQL.
    public let sql: String

    /// A digest of the SQL, recorded when applied, so an edited migration is caught.
    public var checksum: String { Hex.encode(Blake2b.hash(utf8: sql)) }
}

/// Why the schema cannot be used or migrated.
public enum MigrationError: Error, CustomStringConvertible, Equatable {
    case directoryUnreadable(String)
    case badFileName(String)
    case duplicateVersion(Int)
    case edited(name: String)
    case outdated(pending: [String])
    case badRoleName(String)
    case roleIsOwner(String)
    case roleMissing(String)

    public var description: String {
        switch self {
        case .directoryUnreadable(let path): "cannot read migrations from \(path) (set MIGRATIONS_DIR)"
        case .badFileName(let name): "migration file \(name) must be named NNNN_description.sql"
        case .duplicateVersion(let version): "two migration files have version \(version)"
        case .edited(let name): "migration \(name) was changed after it was applied; add a new migration instead"
        case .outdated(let pending):
            "the database schema is out of date (pending: \(pending.joined(separator: ", "))): run `tessera migrate`, or start with `tessera serve --migrate`"
        case .badRoleName(let role): "runtime role \(role) must be 1-63 characters of a-z, 0-9 and _, not starting with a digit"
        case .roleIsOwner(let role): "runtime role \(role) owns the schema; name a separate role with fewer privileges"
        case .roleMissing(let role): "runtime role \(role) does not exist; create it first (CREATE ROLE \(role) LOGIN PASSWORD '...')"
        }
    }
}

/// Applies the migrations in order, each in its own transaction under an advisory lock, and records them.
public struct Migrator: Sendable {
    /// Advisory lock key shared by every instance, so two migrating at once take turns.
    static let lockKey: Int64 = 0x7465_7373_6572_61  // "tessera"

    let client: PostgresClient
    /// The known migrations, in version order.
    public let migrations: [Migration]

    /// Creates a migrator for `migrations`.
    public init(client: PostgresClient, migrations: [Migration]) {
        self.client = client
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Reads `NNNN_name.sql` files from `directory`.
    public static func migrations(in directory: String) throws -> [Migration] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw MigrationError.directoryUnreadable(directory)
        }
        var migrations: [Migration] = []
        for file in names.sorted() where file.hasSuffix(".sql") {
            let name = String(file.dropLast(4))
            guard let version = name.split(separator: "_").first.flatMap({ Int($0) }) else { throw MigrationError.badFileName(file) }
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(file)") else {
                throw MigrationError.directoryUnreadable("\(directory)/\(file)")
            }
            guard !migrations.contains(where: { $0.version == version }) else { throw MigrationError.duplicateVersion(version) }
            migrations.append(Migration(version: version, name: name, sql: String(decoding: data, as: UTF8.self)))
        }
        return migrations
    }

    /// Applies every pending migration and returns the names of those applied.
    @discardableResult
    public func migrate(logger: Logger) async throws -> [String] {
        var applied: [String] = []
        for migration in migrations {
            let didApply = try await client.inTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
                try await Self.createHistoryTable(on: connection, logger: logger)
                let recorded = try await connection.query(
                    "SELECT checksum FROM schema_migrations WHERE version = \(migration.version)",
                    logger: logger
                )
                for try await checksum in recorded.decode(String.self) {
                    guard checksum == migration.checksum else { throw MigrationError.edited(name: migration.name) }
                    return false
                }
                for statement in SQLScript.statements(in: migration.sql) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    """
                    INSERT INTO schema_migrations (version, name, checksum)
                    VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                    """,
                    logger: logger
                )
                return true
            }
            if didApply {
                logger.info("migration applied", metadata: ["migration": "\(migration.name)"])
                applied.append(migration.name)
            }
        }
        return applied
    }

    /// What `tessera serve` needs of each table, and no more: audit rows can be added and read, never changed or
    /// deleted; no table can be truncated, altered or dropped (only its owner can).
    public static let runtimePrivileges: KeyValuePairs<String, String> = [
        "tokens": "SELECT, INSERT, UPDATE, DELETE",
        "audit_events": "SELECT, INSERT",
        "rate_limits": "SELECT, INSERT, UPDATE, DELETE",
        "invalidation_clock": "SELECT, UPDATE",
        "token_invalidations": "SELECT, INSERT, DELETE",
        "schema_migrations": "SELECT",
    ]

    /// Gives `role` exactly ``runtimePrivileges`` (and use of the schema), revoking anything else it had on these
    /// tables. Run by the schema's owner after migrating, so a new table is granted as it arrives.
    public func grantRuntimePrivileges(to role: String, logger: Logger) async throws {
        // An identifier cannot be a bind parameter: only a plain lower-case name is accepted, then quoted.
        guard (1...63).contains(role.utf8.count), role.utf8.first.map({ !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) == true,
            role.utf8.allSatisfy({ (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") })
        else { throw MigrationError.badRoleName(role) }
        try await client.inTransaction(logger: logger) { connection in
            let facts = try await connection.query(
                """
                SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = \(role)),
                       (SELECT tableowner FROM pg_tables WHERE tablename = 'tokens' AND schemaname = current_schema()) = \(role),
                       current_schema()
                """,
                logger: logger
            )
            var schema = ""
            for try await (exists, owns, current) in facts.decode((Bool, Bool?, String).self) {
                guard exists else { throw MigrationError.roleMissing(role) }
                guard owns != true else { throw MigrationError.roleIsOwner(role) }
                schema = current
            }
            let quotedSchema = "\"" + schema.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            try await connection.query("GRANT USAGE ON SCHEMA \(unescaped: quotedSchema) TO \(unescaped: role)", logger: logger)
            for (table, privileges) in Self.runtimePrivileges {
                try await connection.query("REVOKE ALL ON \(unescaped: table) FROM \(unescaped: role)", logger: logger)
                try await connection.query("GRANT \(unescaped: privileges) ON \(unescaped: table) TO \(unescaped: role)", logger: logger)
            }
        }
        logger.info("runtime role granted its privileges", metadata: ["role": "\(role)"])
    }

    /// Throws ``MigrationError/outdated(pending:)`` unless every known migration is applied unchanged.
    public func checkSchemaIsCurrent(logger: Logger) async throws {
        let exists = try await client.query("SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger)
        var hasHistory = false
        for try await value in exists.decode(Bool.self) { hasHistory = value }
        var recorded: [Int: String] = [:]
        if hasHistory {
            let rows = try await client.query("SELECT version, checksum FROM schema_migrations", logger: logger)
            for try await (version, checksum) in rows.decode((Int, String).self) { recorded[version] = checksum }
        }
        for migration in migrations {
            if let checksum = recorded[migration.version], checksum != migration.checksum { throw MigrationError.edited(name: migration.name) }
        }
        // Migrations are forward-only and additive, so a database a newer build has migrated still serves this
        // one: during a rolling upgrade the old instances stay ready.
        let newer = recorded.keys.sorted().filter { version in !migrations.contains { $0.version == version } }
        if !newer.isEmpty {
            logger.notice("the database has migrations this build does not know; a newer build has migrated it", metadata: ["versions": "\(newer)"])
        }
        let pending = migrations.filter { recorded[$0.version] == nil }.map(\.name)
        guard pending.isEmpty else { throw MigrationError.outdated(pending: pending) }
    }

    private static func createHistoryTable(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            logger: logger
        )
    }
}

/// Splits a SQL script into statements at top-level semicolons (outside quotes, comments and dollar quotes).
enum SQLScript {
    static func statements(in script: String) -> [String] {
        let characters = Array(script.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var index = 0
        func flush() {
            let statement = String(current).trimmingCharacters(in: .whitespacesAndNewlines)
            if !statement.isEmpty, !isOnlyComments(statement) { statements.append(statement) }
            current = String.UnicodeScalarView()
        }
        while index < characters.count {
            let character = characters[index]
            let next = index + 1 < characters.count ? characters[index + 1] : nil
            if character == "-", next == "-" {
                // Line comment: copy to the end of the line.
                while index < characters.count, characters[index] != "\n" {
                    current.append(characters[index])
                    index += 1
                }
                continue
            }
            if character == "'" || character == "\"" {
                current.append(character)
                index += 1
                while index < characters.count {
                    current.append(characters[index])
                    index += 1
                    if characters[index - 1] == character { break }
                }
                continue
            }
            if character == "$", let tagEnd = characters[(index + 1)...].firstIndex(where: { !($0.properties.isAlphabetic || $0 == "_") }),
                characters[tagEnd] == "$"
            {
                let tag = Array(characters[index...tagEnd])
                current.append(contentsOf: tag)
                index = tagEnd + 1
                while index < characters.count, !characters[index...].starts(with: tag) {
                    current.append(characters[index])
                    index += 1
                }
                if index < characters.count {
                    current.append(contentsOf: tag)
                    index += tag.count
                }
                continue
            }
            if character == ";" {
                flush()
            } else {
                current.append(character)
            }
            index += 1
        }
        flush()
        return statements
    }

    private static func isOnlyComments(_ statement: String) -> Bool {
        statement.split(separator: "\n").allSatisfy { $0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
    }
}

extension Migrator {
    /// Connects to `databaseURL`, applies pending migrations and disconnects; for `tessera migrate`.
    /// Applies pending migrations at `databaseURL`, then grants `runtimeRole`, when given, what `tessera serve` needs.
    public static func migrate(_ databaseURL: DatabaseURL, migrations: [Migration], runtimeRole: String? = nil, logger: Logger) async throws -> [String] {
        try await withPostgresClient(databaseURL, logger: logger) { client in
            try await withDeadline(.seconds(30), "PostgreSQL at \(databaseURL) could not be reached within 30 seconds (the log above says why)") {
                let migrator = Migrator(client: client, migrations: migrations)
                let applied = try await migrator.migrate(logger: logger)
                if let runtimeRole { try await migrator.grantRuntimePrivileges(to: runtimeRole, logger: logger) }
                return applied
            }
        }
    }
}

/// Runs `body` with a running client for `databaseURL`, shutting the client down afterwards.
public func withPostgresClient<Result: Sendable>(
    _ databaseURL: DatabaseURL,
    logger: Logger,
    _ body: @escaping @Sendable (PostgresClient) async throws -> Result
) async throws -> Result {
    let client = PostgresClient(configuration: databaseURL.clientConfiguration, backgroundLogger: logger)
    return try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask {
            await client.run()
            return nil
        }
        defer { group.cancelAll() }
        return try await body(client)
    }
}
