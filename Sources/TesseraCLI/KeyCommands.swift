import ArgumentParser
import Tessera
import TokenCrypto

/// `tessera api-key`: new API keys.
struct APIKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-key",
        abstract: "Manage API keys.",
        subcommands: [Generate.self]
    )

    /// `tessera api-key generate`: a new key and its configuration entry.
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

/// `tessera hash-key`: a new token hashing key.
struct HashKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-key",
        abstract: "Manage the token hashing key.",
        subcommands: [Generate.self]
    )

    /// `tessera hash-key generate`: a new random hashing key.
    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a new random TOKEN_HASH_KEY (64 hexadecimal characters).")

        func run() async throws {
            print(HashKey.generate(id: 1).hex)
        }
    }
}
