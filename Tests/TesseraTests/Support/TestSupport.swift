import Foundation
import HummingbirdTesting
import Logging
import PostgresNIO
import Testing
import TokenCrypto

@testable import Tessera

/// Keys and settings shared by the tests.
enum Fixtures {
    static let adminKey = "test-admin-key-0123456789"
    static let verifierKey = "test-verifier-key-0123456789"
    static let hashKey = HashKey.generate(id: 1)

    static let apiKeys = APIKeyRing([
        APIKeyCredential(name: "admin", role: .admin, secret: adminKey),
        APIKeyCredential(name: "gateway", role: .verifier, secret: verifierKey),
    ])

    static var logger: Logger {
        var logger = Logger(label: "tessera-tests")
        logger.logLevel = .critical
        return logger
    }

    /// A configuration pointing at `databaseURL` (or a placeholder when the router uses an in-memory repository).
    static func configuration(
        databaseURL: DatabaseURL? = nil,
        hasher: TokenHasher = TokenHasher(currentKey: hashKey),
        rateLimits: RateLimitSettings = RateLimitSettings(),
        clientAddresses: ClientAddressResolver = ClientAddressResolver()
    ) throws -> AppConfiguration {
        AppConfiguration(
            databaseURL: try databaseURL ?? DatabaseURL("postgresql://unused@127.0.0.1/unused"),
            hasher: hasher,
            apiKeys: apiKeys,
            host: "127.0.0.1",
            port: 0,
            rateLimits: rateLimits,
            clientAddresses: clientAddresses,
            databaseTimeout: .seconds(2),
            lastUsedFlushInterval: .milliseconds(200),
            publicDirectory: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../public").standardized.path
        )
    }

    /// Runs `body` against the router of an application over an in-memory repository, configured as ``configuration()``.
    static func withAPI(_ body: @escaping @Sendable (APIClient) async throws -> Void) async throws {
        let app = buildApplication(try configuration(), repository: MemoryTokenRepository(), logger: logger)
        try await app.test(.router) { client in try await body(APIClient(client: client)) }
    }
}

/// A fresh, migrated database on the test cluster that `scripts/test` starts.
enum TestDatabase {
    /// The cluster's URL from `TESSERA_TEST_DATABASE_URL`; tests that store data fail without it rather than skip.
    static func serverURL() throws -> DatabaseURL {
        guard let url = ProcessInfo.processInfo.environment["TESSERA_TEST_DATABASE_URL"] else {
            Issue.record("TESSERA_TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts PostgreSQL")
            throw TestDatabaseError.notConfigured
        }
        return try DatabaseURL(url)
    }

    /// The migrations shipped in the repository.
    static func migrations() throws -> [Migration] {
        let directory = ProcessInfo.processInfo.environment["MIGRATIONS_DIR"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../migrations").standardized.path
        return try Migrator.migrations(in: directory)
    }

    /// Runs `body` with a client on a new empty database (migrated unless `migrated` is false), dropped afterwards.
    static func withDatabase<Result: Sendable>(
        migrated: Bool = true,
        _ body: @escaping @Sendable (PostgresClient, DatabaseURL) async throws -> Result
    ) async throws -> Result {
        let server = try serverURL()
        let name = "tessera_test_\(Hex.encode(SecureRandom.bytes(count: 6)))"
        let logger = Fixtures.logger
        _ = try await withPostgresClient(server, logger: logger) { admin in
            try await admin.query("CREATE DATABASE \(unescaped: name)", logger: logger)
        }
        var url = server
        url.database = name
        let migrations = try migrations()
        let databaseURL = url
        do {
            let result = try await withPostgresClient(databaseURL, logger: logger) { client in
                if migrated { try await Migrator(client: client, migrations: migrations).migrate(logger: logger) }
                return try await body(client, databaseURL)
            }
            try await drop(name, on: server)
            return result
        } catch {
            try? await drop(name, on: server)
            throw error
        }
    }

    private static func drop(_ name: String, on server: DatabaseURL) async throws {
        let logger = Fixtures.logger
        _ = try await withPostgresClient(server, logger: logger) { admin in
            try await admin.query("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)", logger: logger)
        }
    }
}

enum TestDatabaseError: Error {
    case notConfigured
}
