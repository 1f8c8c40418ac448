import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Tessera
import TokenCrypto

@main
struct TesseraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Issue, list, revoke and verify access tokens stored as keyed hashes in PostgreSQL.",
        subcommands: [Serve.self, Migrate.self, APIKeyCommand.self, HashKeyCommand.self]
    )
}

/// The environment with `.env` (when present) underneath it.
func loadEnvironment() -> [String: String] {
    environmentWithDotEnv(ProcessInfo.processInfo.environment)
}

/// Prints `message` to standard error and exits with status 1.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("tessera: \(message)\n".utf8))
    exit(1)
}

/// A logger writing to standard error at `level`.
func makeLogger(level: Logger.Level) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: "tessera")
    logger.logLevel = level
    return logger
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP API. Refuses to start on an out-of-date schema unless --migrate is given."
    )

    @Flag(help: "Apply pending migrations before serving.")
    var migrate = false

    func run() async throws {
        let environment = loadEnvironment()
        let configuration: AppConfiguration
        let migrations: [Migration]
        do {
            configuration = try AppConfiguration(environment: environment)
            migrations = try Migrator.migrations(in: Migrator.defaultDirectory(environment: environment))
        } catch {
            fail("\(error)")
        }
        let logger = makeLogger(level: configuration.logLevel)
        let app = buildApplication(configuration, migrations: migrations, migrateFirst: migrate, logger: logger)
        // SIGTERM or SIGINT: stop accepting, let requests in flight finish within the grace period, close the pool.
        var group = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
        do {
            try await ServiceGroup(configuration: group).run()
            logger.info("stopped")
        } catch let error as MigrationError {
            fail("\(error)")
        } catch let error as DeadlineExceeded {
            fail("\(error)")
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (safe to run from several instances at once), then exit."
    )

    func run() async throws {
        let environment = loadEnvironment()
        let databaseURL: DatabaseURL
        let migrations: [Migration]
        do {
            guard let url = environment["DATABASE_URL"], !url.isEmpty else { throw ConfigurationError("DATABASE_URL", "is not set") }
            databaseURL = try DatabaseURL(url)
            migrations = try Migrator.migrations(in: Migrator.defaultDirectory(environment: environment))
        } catch {
            fail("\(error)")
        }
        let logger = makeLogger(level: Logger.Level(rawValue: environment["LOG_LEVEL"]?.lowercased() ?? "") ?? .info)
        do {
            let applied = try await Migrator.migrate(databaseURL, migrations: migrations, logger: logger)
            print(applied.isEmpty ? "schema is up to date" : "applied: \(applied.joined(separator: ", "))")
        } catch let error as MigrationError {
            fail("\(error)")
        } catch let error as DeadlineExceeded {
            fail("\(error)")
        }
    }
}

struct APIKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-key",
        abstract: "Manage API keys.",
        subcommands: [Generate.self]
    )

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new API key once, with the API_KEYS entry that holds only its digest."
        )

        @Option(help: "The key's name: 1-64 characters of A-Z a-z 0-9 . _ -")
        var name: String

        @Option(help: "The key's role: admin or verifier.")
        var role: String

        func validate() throws {
            guard APIKeyRing.isValidName(name) else { throw ValidationError("--name must be 1-64 characters of A-Z a-z 0-9 . _ -") }
            guard APIKeyRole(rawValue: role) != nil else { throw ValidationError("--role must be admin or verifier") }
        }

        func run() async throws {
            let secret = APIKeyRing.generateSecret()
            let credential = APIKeyCredential(name: name, role: APIKeyRole(rawValue: role)!, secret: secret)
            print("API key (shown once, give it to the caller): \(secret)")
            print("API_KEYS entry (digest only, safe in configuration): \(credential.configurationEntry)")
        }
    }
}

struct HashKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-key",
        abstract: "Manage the token hashing key.",
        subcommands: [Generate.self]
    )

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a new random TOKEN_HASH_KEY (64 hexadecimal characters).")

        func run() async throws {
            print(HashKey.generate(id: 1).hex)
        }
    }
}
