import Logging
import TokenCrypto

/// Everything Tessera reads from its environment, validated once at start-up.
public struct AppConfiguration: Sendable {
    /// Where PostgreSQL is.
    public var databaseURL: DatabaseURL
    /// The keyed-hash keys: the current one and those that still verify older tokens.
    public var hasher: TokenHasher
    /// The API keys that may call the service.
    public var apiKeys: APIKeyRing
    /// The address to listen on.
    public var host: String
    /// The port to listen on.
    public var port: Int
    /// The prefix of newly issued tokens.
    public var tokenPrefix: TokenPrefix
    /// The log level.
    public var logLevel: Logger.Level

    /// Creates a configuration from already validated parts (tests use this directly).
    public init(
        databaseURL: DatabaseURL,
        hasher: TokenHasher,
        apiKeys: APIKeyRing,
        host: String = "127.0.0.1",
        port: Int = 3000,
        tokenPrefix: TokenPrefix = .default,
        logLevel: Logger.Level = .info
    ) {
        self.databaseURL = databaseURL
        self.hasher = hasher
        self.apiKeys = apiKeys
        self.host = host
        self.port = port
        self.tokenPrefix = tokenPrefix
        self.logLevel = logLevel
    }

    /// Reads and validates the configuration, throwing a ``ConfigurationError`` that names the first bad variable.
    public init(environment: [String: String]) throws {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingWhitespace(), !text.isEmpty else { return nil }
            return String(text)
        }
        guard let url = value("DATABASE_URL") else { throw ConfigurationError("DATABASE_URL", "is not set") }
        let databaseURL = try DatabaseURL(url)
        let hasher = try Self.parseHasher(key: value("TOKEN_HASH_KEY"), keyID: value("TOKEN_HASH_KEY_ID"), oldKeys: value("TOKEN_HASH_OLD_KEYS"))
        let apiKeys = try APIKeyRing.parse(apiKey: value("API_KEY"), apiKeys: value("API_KEYS"))
        let port = try value("PORT").map { text in
            guard let port = Int(text), (1...65535).contains(port) else { throw ConfigurationError("PORT", "must be a number from 1 to 65535") }
            return port
        } ?? 3000
        let tokenPrefix = try value("TOKEN_PREFIX").map { text in
            guard let prefix = TokenPrefix(text) else { throw ConfigurationError("TOKEN_PREFIX", "must be 2-12 characters of [a-z0-9]") }
            return prefix
        } ?? .default
        let logLevel = try value("LOG_LEVEL").map { text in
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw ConfigurationError("LOG_LEVEL", "must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return level
        } ?? .info
        self.init(
            databaseURL: databaseURL,
            hasher: hasher,
            apiKeys: apiKeys,
            host: value("HOST") ?? "127.0.0.1",
            port: port,
            tokenPrefix: tokenPrefix,
            logLevel: logLevel
        )
    }

    /// Builds the hasher from `TOKEN_HASH_KEY`, `TOKEN_HASH_KEY_ID` and `TOKEN_HASH_OLD_KEYS` (`id:hex,...`).
    static func parseHasher(key: String?, keyID: String?, oldKeys: String?) throws -> TokenHasher {
        let currentID = try keyID.map { text in
            guard let id = Int(text), (1...32767).contains(id) else { throw ConfigurationError("TOKEN_HASH_KEY_ID", "must be a number from 1 to 32767") }
            return id
        } ?? 1
        guard let key else { throw ConfigurationError("TOKEN_HASH_KEY", "is not set (make one with `tessera hash-key generate`)") }
        guard let currentKey = HashKey(id: currentID, hex: key) else {
            throw ConfigurationError("TOKEN_HASH_KEY", "must be 64 hexadecimal characters (make one with `tessera hash-key generate`)")
        }
        var previousKeys: [HashKey] = []
        for (position, entry) in (oldKeys ?? "").split(separator: ",").enumerated() {
            let parts = entry.trimmingWhitespace().split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let id = Int(parts[0]), (1...32767).contains(id), let oldKey = HashKey(id: id, hex: parts[1]) else {
                throw ConfigurationError("TOKEN_HASH_OLD_KEYS", "entry \(position + 1) must be id:<64 hexadecimal characters>")
            }
            guard id != currentID, !previousKeys.contains(where: { $0.id == id }) else {
                throw ConfigurationError("TOKEN_HASH_OLD_KEYS", "repeats key id \(id); every key needs its own id")
            }
            previousKeys.append(oldKey)
        }
        return TokenHasher(currentKey: currentKey, previousKeys: previousKeys)
    }
}
