import ArgumentParser
import Tessera

/// `tessera migrate`: the schema brought up to date, optionally with grants for the serving role.
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
