import ArgumentParser

/// `tessera`: the server and its break-glass commands.
@main
struct TesseraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Issue, list, revoke and verify access tokens stored as keyed hashes in PostgreSQL.",
        subcommands: [Serve.self, Migrate.self, TokensCommand.self, Purge.self, APIKeyCommand.self, HashKeyCommand.self]
    )
}
