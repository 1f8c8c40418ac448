import ArgumentParser
import Configuration
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Tessera
import TokenCrypto

@main
struct TesseraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Issue, list, revoke and verify access tokens stored as keyed hashes in PostgreSQL.",
        subcommands: [Serve.self, Migrate.self, TokensCommand.self, Purge.self, APIKeyCommand.self, HashKeyCommand.self]
    )
}

/// The environment with `.env` (when present) underneath it, or an exit naming what could not be read.
func loadReader() async -> ConfigReader {
    do {
        return try await AppConfiguration.environmentReader()
    } catch {
        fail("configuration error: .env could not be read: \(error)")
    }
}

/// What the database commands need from the environment, read as strictly as `serve` reads it.
struct DatabaseSettings {
    var databaseURL: DatabaseURL
    var migrations: [Migration]
    var logLevel: Logger.Level
    var logFormat: LineLogHandler.Format

    /// Reads `DATABASE_URL`, `MIGRATIONS_DIR`, `LOG_LEVEL` and `LOG_FORMAT`, or exits naming the bad one.
    static func load(defaultLevel: Logger.Level) async -> DatabaseSettings {
        let reader = await loadReader()
        do {
            let database = try AppConfiguration.databaseSettings(reader)
            return DatabaseSettings(
                databaseURL: database.url,
                migrations: try Migrator.migrations(in: database.migrationsDirectory),
                logLevel: try AppConfiguration.logLevel(reader) ?? defaultLevel,
                logFormat: try AppConfiguration.logFormat(reader)
            )
        } catch {
            fail("\(error)")
        }
    }
}

/// Prints `message` to standard error and exits with status 1.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("tessera: \(message)\n".utf8))
    exit(1)
}

/// A logger writing `format` lines to standard error at `level`.
func makeLogger(level: Logger.Level, format: LineLogHandler.Format) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = LineLogHandler(label: label, format: format)
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
        let reader = await loadReader()
        let configuration: AppConfiguration
        let migrations: [Migration]
        do {
            configuration = try AppConfiguration(reader)
            migrations = try Migrator.migrations(in: AppConfiguration.databaseSettings(reader).migrationsDirectory)
        } catch {
            fail("\(error)")
        }
        let logger = makeLogger(level: configuration.logLevel, format: configuration.logFormat)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let app = buildApplication(configuration, migrations: migrations, migrateFirst: migrate, metricsRegistry: registry, logger: logger)
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

    @Option(name: .customLong("runtime-role"), help: "Grant this existing role exactly what `tessera serve` needs (and no more) once migrated.")
    var runtimeRole: String?

    func run() async throws {
        let settings = await DatabaseSettings.load(defaultLevel: .info)
        let logger = makeLogger(level: settings.logLevel, format: settings.logFormat)
        do {
            let applied = try await Migrator.migrate(settings.databaseURL, migrations: settings.migrations, runtimeRole: runtimeRole, logger: logger)
            print(applied.isEmpty ? "schema is up to date" : "applied: \(applied.joined(separator: ", "))")
            if let runtimeRole { print("granted \(runtimeRole) what tessera serve needs") }
        } catch let error as MigrationError {
            fail("\(error)")
        } catch let error as DeadlineExceeded {
            fail("\(error)")
        }
    }
}

/// Runs `body` with the PostgreSQL repository named by `DATABASE_URL`, after checking the schema is current.
func withRepository<Result: Sendable>(_ body: @escaping @Sendable (PostgresTokenRepository, Logger) async throws -> Result) async throws -> Result {
    let settings = await DatabaseSettings.load(defaultLevel: .warning)
    let logger = makeLogger(level: settings.logLevel, format: settings.logFormat)
    let migrations = settings.migrations
    do {
        return try await withPostgresClient(settings.databaseURL, logger: logger) { client in
            try await Migrator(client: client, migrations: migrations).checkSchemaIsCurrent(logger: logger)
            return try await body(PostgresTokenRepository(client: client, timeout: .seconds(30)), logger)
        }
    } catch let error as MigrationError {
        fail("\(error)")
    } catch let error as DeadlineExceeded {
        fail("\(error)")
    }
}

/// The actor recorded in audit rows for break-glass commands: `cli:<login name>`, from the environment or, where
/// it is unset (as in many containers), from the user database.
var commandLineActor: String {
    let environment = ProcessInfo.processInfo.environment
    let name = environment["USER"] ?? environment["LOGNAME"] ?? getpwuid(getuid()).flatMap { String(cString: $0.pointee.pw_name) } ?? "uid\(getuid())"
    return "cli:\(name)"
}

struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Break-glass work on the token database directly (needs DATABASE_URL, not an API key).",
        subcommands: [List.self, Revoke.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a user's tokens, newest first: metadata only, never a secret.")

        @Option(help: "The user whose tokens to list.")
        var user: String

        @Option(help: "active, revoked, expired or all.")
        var status: String = "all"

        func validate() throws {
            guard TokenStatusFilter(rawValue: status) != nil else { throw ValidationError("--status must be active, revoked, expired or all") }
        }

        func run() async throws {
            let (user, status) = (user, TokenStatusFilter(rawValue: status)!)
            let tokens = try await withRepository { repository, logger in
                var all: [TokenRecord] = []
                var cursor: TokenCursor?
                repeat {
                    let page = try await repository.tokens(userID: user, status: status, limit: 100, after: cursor, logger: logger)
                    all += page.tokens
                    cursor = page.nextCursor
                } while cursor != nil
                return all
            }
            let now = Date()
            let dates = ISO8601DateFormatter()
            print(["ID", "PREFIX", "STATUS", "CREATED", "EXPIRES", "LAST USED", "NAME"].joined(separator: "\t"))
            for token in tokens {
                print(
                    [
                        token.id.uuidString.lowercased(), token.displayPrefix, token.status(at: now).rawValue,
                        dates.string(from: token.createdAt), dates.string(from: token.expiresAt),
                        token.lastUsedAt.map(dates.string(from:)) ?? "-", token.name ?? "-",
                    ].joined(separator: "\t"))
            }
            if tokens.isEmpty { print("(no tokens)") }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a token by id (with its rotation lineage), or every active token of a user with --user; audited as cli:<user>."
        )

        @Argument(help: "The token's id (a UUID).")
        var id: String?

        @Option(name: .customLong("user"), help: "Revoke every active token of this user instead, in one transaction.")
        var userID: String?

        func validate() throws {
            switch (id, userID) {
            case (nil, nil), (.some, .some): throw ValidationError("give either a token id or --user, not both")
            case (.some(let id), nil): guard UUID(uuidString: id) != nil else { throw ValidationError("the id must be a UUID") }
            case (nil, .some(let userID)): guard !userID.isEmpty else { throw ValidationError("--user needs a user id") }
            }
        }

        func run() async throws {
            if let userID {
                let revoked = try await withRepository { repository, logger in
                    try await repository.revokeAll(userID: userID, by: commandLineActor, logger: logger)
                }
                print("revoked \(revoked.count) active token(s) of the user")
                return
            }
            let id = UUID(uuidString: id!)!
            let outcome = try await withRepository { repository, logger in
                try await repository.revoke(id: id, by: commandLineActor, logger: logger)
            }
            switch outcome {
            case .revoked(_, let lineage):
                print("revoked \(id.uuidString.lowercased())")
                for member in lineage { print("revoked \(member.uuidString.lowercased()) (same rotation lineage)") }
            case .alreadyRevoked: print("\(id.uuidString.lowercased()) was already revoked")
            case .notFound: fail("no token has id \(id.uuidString.lowercased())")
            }
        }
    }
}

struct Purge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete tokens that expired, or were revoked, longer ago than --expired-before. Audit rows stay."
    )

    @Option(name: .customLong("expired-before"), help: "How long ago: a number with d, h, m or s, such as 30d.")
    var age: String

    func validate() throws {
        guard Self.seconds(age) != nil else { throw ValidationError("--expired-before must look like 30d, 12h, 90m or 3600s (at most 100 years)") }
    }

    /// Seconds in `30d`, `12h`, `90m` or `3600s`, up to 100 years.
    static func seconds(_ text: String) -> Int? {
        guard let unit = text.last, let number = Int(text.dropLast()), number >= 0,
            let multiplier = ["d": 86_400, "h": 3_600, "m": 60, "s": 1][String(unit)]
        else { return nil }
        let (seconds, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow || seconds > 100 * 365 * 86_400 ? nil : seconds
    }

    func run() async throws {
        let seconds = Self.seconds(age)!
        let deleted = try await withRepository { repository, logger in
            try await repository.purge(olderThan: seconds, by: commandLineActor, logger: logger)
        }
        print("deleted \(deleted) token\(deleted == 1 ? "" : "s") that expired or were revoked more than \(age) ago")
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
