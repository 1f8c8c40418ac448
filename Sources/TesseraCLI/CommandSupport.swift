import Configuration
import Foundation
import Logging
import Tessera

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

/// Runs `body` with the PostgreSQL repository named by `DATABASE_URL`, after checking the schema is current.
func withRepository<Result: Sendable>(_ body: @escaping @Sendable (PostgresTokenRepository, Logger) async throws -> Result) async throws -> Result {
    let settings = await DatabaseSettings.load(defaultLevel: .warning)
    let logger = makeLogger(level: settings.logLevel, format: settings.logFormat)
    let migrations = settings.migrations
    do {
        return try await withPostgresClient(settings.databaseURL, logger: logger) { client in
            try await Migrator(client: client, migrations: migrations).checkSchemaIsCurrent(logger: logger)
            return try await body(PostgresTokenRepository(client: client, timeout: .seconds(30), preparesStatements: false), logger)
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
