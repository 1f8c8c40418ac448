import Foundation
import Configuration
import HTTPTypes
import Logging
import SystemPackage
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
    /// How log lines are written (`LOG_FORMAT`).
    public var logFormat: LineLogHandler.Format
    /// Rate limit budgets.
    public var rateLimits: RateLimitSettings
    /// How the client address is found (`TRUSTED_PROXIES`).
    public var clientAddresses: ClientAddressResolver
    /// Longest wait for a database answer, connection included, before a request is answered `503`.
    public var databaseTimeout: Duration
    /// Most connections the pool opens to PostgreSQL.
    public var databasePoolSize: Int
    /// Streaming replicas for verification lookups (`DATABASE_READ_URL`), if any.
    public var databaseReadURLs: [DatabaseURL]
    /// How far a replica may lag the primary and still be read (`DATABASE_READ_MAX_LAG_MS`).
    public var databaseReadMaximumLag: Duration
    /// Whether the statements run per request start out prepared (`DATABASE_PREPARED_STATEMENTS`); off from the
    /// start behind a transaction pooler that does not keep them.
    public var databasePreparesStatements: Bool
    /// How long a stopping server waits for requests in flight.
    public var shutdownGracePeriod: Duration
    /// The largest request body read, in bytes; larger ones are refused with `413`.
    public var maximumBodySize: Int
    /// How often noted token uses are written to `last_used_at`.
    public var lastUsedFlushInterval: Duration
    /// Where the management page's files are (`PUBLIC_DIR`).
    public var publicDirectory: String
    /// The verification cache's entry lifetime and size, or `nil` when it is off (`VERIFY_CACHE=off`).
    public var verifyCache: (timeToLive: Duration, capacity: Int)?
    /// Whether new tokens may be granted `*`, every scope (`ALLOW_WILDCARD_ALL_SCOPE`).
    public var allowsEveryScope: Bool
    /// How long a connection may sit with nothing arriving before it is closed (`HTTP_IDLE_TIMEOUT_SECONDS`).
    public var idleTimeout: Duration
    /// Longest a request's head and body may take to arrive, from its first byte (`HTTP_READ_TIMEOUT_SECONDS`).
    public var readTimeout: Duration
    /// Most connections open at once; further ones wait to be accepted (`HTTP_MAX_CONNECTIONS`).
    public var maximumConnections: Int
    /// The bearer key `/metrics` requires, or `nil` when it is open (`METRICS_KEY`).
    public var metricsKey: String?
    /// What forward auth answers a request it lets through: `204`, or `200` for Envoy (`FORWARD_AUTH_SUCCESS_STATUS`).
    public var forwardAuthSuccessStatus: HTTPResponse.Status
    /// What forward auth requires of each original request, or `nil` when each proxy location names its scopes
    /// (`FORWARD_AUTH_RULES`).
    public var forwardAuthRules: ForwardAuthRules?
    /// GitHub's secret scanning keys, or `nil` when leak reports are not taken (`SECRET_SCANNING_GITHUB_KEYS`).
    public var secretScanningKeys: SecretScanningKeys?

    /// Creates a configuration from already validated parts (tests use this directly).
    public init(
        databaseURL: DatabaseURL,
        hasher: TokenHasher,
        apiKeys: APIKeyRing,
        host: String = "127.0.0.1",
        port: Int = 3000,
        tokenPrefix: TokenPrefix = .default,
        logLevel: Logger.Level = .info,
        logFormat: LineLogHandler.Format = .text,
        rateLimits: RateLimitSettings = RateLimitSettings(),
        clientAddresses: ClientAddressResolver = ClientAddressResolver(),
        databaseTimeout: Duration = .seconds(5),
        databasePoolSize: Int = 10,
        databaseReadURLs: [DatabaseURL] = [],
        databaseReadMaximumLag: Duration = .seconds(1),
        databasePreparesStatements: Bool = true,
        shutdownGracePeriod: Duration = .seconds(25),
        maximumBodySize: Int = 64 * 1024,
        lastUsedFlushInterval: Duration = .seconds(5),
        publicDirectory: String = "public",
        verifyCache: (timeToLive: Duration, capacity: Int)? = nil,
        allowsEveryScope: Bool = false,
        idleTimeout: Duration = .seconds(60),
        readTimeout: Duration = .seconds(10),
        maximumConnections: Int = 10_000,
        metricsKey: String? = nil,
        forwardAuthSuccessStatus: HTTPResponse.Status = .noContent,
        forwardAuthRules: ForwardAuthRules? = nil,
        secretScanningKeys: SecretScanningKeys? = nil
    ) {
        self.databaseURL = databaseURL
        self.hasher = hasher
        self.apiKeys = apiKeys
        self.host = host
        self.port = port
        self.tokenPrefix = tokenPrefix
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.rateLimits = rateLimits
        self.clientAddresses = clientAddresses
        self.databaseTimeout = databaseTimeout
        self.databasePoolSize = databasePoolSize
        self.databaseReadURLs = databaseReadURLs
        self.databaseReadMaximumLag = databaseReadMaximumLag
        self.databasePreparesStatements = databasePreparesStatements
        self.shutdownGracePeriod = shutdownGracePeriod
        self.maximumBodySize = maximumBodySize
        self.lastUsedFlushInterval = lastUsedFlushInterval
        self.publicDirectory = publicDirectory
        self.verifyCache = verifyCache
        self.allowsEveryScope = allowsEveryScope
        self.idleTimeout = idleTimeout
        self.readTimeout = readTimeout
        self.maximumConnections = maximumConnections
        self.metricsKey = metricsKey
        self.forwardAuthSuccessStatus = forwardAuthSuccessStatus
        self.forwardAuthRules = forwardAuthRules
        self.secretScanningKeys = secretScanningKeys
    }

    /// The variables whose values are secrets: redacted wherever swift-configuration prints or reports them.
    static let secretVariables: Set<String> = ["API_KEY", "API_KEYS", "TOKEN_HASH_KEY", "TOKEN_HASH_OLD_KEYS", "DATABASE_URL", "DATABASE_READ_URL", "METRICS_KEY"]

    /// `environment` (the process's unless given) over the `.env` file at `dotEnvPath`, when there is one: real
    /// variables win.
    public static func environmentReader(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        dotEnvPath: String = ".env"
    ) async throws -> ConfigReader {
        let secrets = SecretsSpecifier<String, String>.specific(secretVariables)
        return ConfigReader(providers: [
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: secrets),
            try await EnvironmentVariablesProvider(environmentFilePath: FilePath(dotEnvPath), allowMissing: true, secretsSpecifier: secrets),
        ])
    }

    /// `DATABASE_URL` and `MIGRATIONS_DIR` (default `migrations`): all the database commands need.
    public static func databaseSettings(_ reader: ConfigReader) throws -> (url: DatabaseURL, migrationsDirectory: String) {
        guard let url = reader.setting("DATABASE_URL") else { throw ConfigurationError("DATABASE_URL", "is not set") }
        return (try DatabaseURL(url), reader.setting("MIGRATIONS_DIR") ?? "migrations")
    }

    /// `LOG_LEVEL`, or `nil` when unset.
    public static func logLevel(_ reader: ConfigReader) throws -> Logger.Level? {
        try reader.setting("LOG_LEVEL").map { text in
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw ConfigurationError("LOG_LEVEL", "must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return level
        }
    }

    /// `LOG_FORMAT`: `text` (the default) or `json`.
    public static func logFormat(_ reader: ConfigReader) throws -> LineLogHandler.Format {
        guard let text = reader.setting("LOG_FORMAT") else { return .text }
        guard let format = LineLogHandler.Format(rawValue: text.lowercased()) else { throw ConfigurationError("LOG_FORMAT", "must be text or json") }
        return format
    }

    /// Reads and validates the configuration from `environment` alone (tests, and callers with their own variables).
    public init(environment: [String: String]) throws {
        try self.init(ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: environment)))
    }

    /// Reads and validates the configuration, throwing a ``ConfigurationError`` that names the first bad variable.
    public init(_ reader: ConfigReader) throws {
        func value(_ name: String) -> String? { reader.setting(name) }
        let databaseURL = try Self.databaseSettings(reader).url
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
        let logLevel = try Self.logLevel(reader) ?? .info
        func wholeNumber(_ name: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
            guard let text = value(name) else { return fallback }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError(name, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        }
        let rateLimits = try RateLimitSettings(environment: value)
        let clientAddresses = try ClientAddressResolver.parse(value("TRUSTED_PROXIES"))
        let databaseTimeout = try wholeNumber("DATABASE_TIMEOUT_SECONDS", default: 5, range: 1...120)
        let databasePoolSize = try wholeNumber("DATABASE_POOL_SIZE", default: 10, range: 1...200)
        let readURLs = try (value("DATABASE_READ_URL") ?? "").split(separator: ",").map { entry in
            try DatabaseURL(String(entry.trimmingWhitespace()), variable: "DATABASE_READ_URL")
        }
        let readMaximumLag = try wholeNumber("DATABASE_READ_MAX_LAG_MS", default: 1000, range: 10...60_000)
        let shutdownGrace = try wholeNumber("SHUTDOWN_GRACE_SECONDS", default: 25, range: 0...600)
        let maximumBodySize = try wholeNumber("MAX_BODY_BYTES", default: 64 * 1024, range: 1024...1_048_576)
        let lastUsedFlush = try wholeNumber("LAST_USED_FLUSH_SECONDS", default: 5, range: 1...60)
        func flag(_ name: String, default fallback: Bool, words: (on: String, off: String) = ("true", "false")) throws -> Bool {
            guard let text = value(name) else { return fallback }
            guard let on = [words.on: true, words.off: false][text.lowercased()] else { throw ConfigurationError(name, "must be \(words.on) or \(words.off)") }
            return on
        }
        let cacheOn = try flag("VERIFY_CACHE", default: true, words: ("on", "off"))
        let preparesStatements = try flag("DATABASE_PREPARED_STATEMENTS", default: true, words: ("on", "off"))
        let cacheSeconds = try wholeNumber("VERIFY_CACHE_TTL_SECONDS", default: 5, range: 1...300)
        let cacheEntries = try wholeNumber("VERIFY_CACHE_MAX_ENTRIES", default: 100_000, range: 100...10_000_000)
        self.init(
            databaseURL: databaseURL,
            hasher: hasher,
            apiKeys: apiKeys,
            host: value("HOST") ?? "127.0.0.1",
            port: port,
            tokenPrefix: tokenPrefix,
            logLevel: logLevel,
            logFormat: try Self.logFormat(reader),
            rateLimits: rateLimits,
            clientAddresses: clientAddresses,
            databaseTimeout: .seconds(databaseTimeout),
            databasePoolSize: databasePoolSize,
            databaseReadURLs: readURLs,
            databaseReadMaximumLag: .milliseconds(readMaximumLag),
            databasePreparesStatements: preparesStatements,
            shutdownGracePeriod: .seconds(shutdownGrace),
            maximumBodySize: maximumBodySize,
            lastUsedFlushInterval: .seconds(lastUsedFlush),
            publicDirectory: value("PUBLIC_DIR") ?? "public",
            verifyCache: cacheOn ? (.seconds(cacheSeconds), cacheEntries) : nil,
            allowsEveryScope: try flag("ALLOW_WILDCARD_ALL_SCOPE", default: false),
            idleTimeout: .seconds(try wholeNumber("HTTP_IDLE_TIMEOUT_SECONDS", default: 60, range: 1...3600)),
            readTimeout: .seconds(try wholeNumber("HTTP_READ_TIMEOUT_SECONDS", default: 10, range: 1...300)),
            maximumConnections: try wholeNumber("HTTP_MAX_CONNECTIONS", default: 10_000, range: 1...1_000_000),
            metricsKey: try value("METRICS_KEY").map { key in
                guard key.utf8.count >= 16, key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
                    throw ConfigurationError("METRICS_KEY", "must be at least 16 printable characters without spaces")
                }
                return key
            },
            forwardAuthSuccessStatus: try value("FORWARD_AUTH_SUCCESS_STATUS").map { text in
                guard let status = ["204": HTTPResponse.Status.noContent, "200": .ok][text] else {
                    throw ConfigurationError("FORWARD_AUTH_SUCCESS_STATUS", "must be 204 or 200 (Envoy's ext_authz lets only 200 through)")
                }
                return status
            } ?? .noContent,
            forwardAuthRules: try value("FORWARD_AUTH_RULES").map { path in
                try Self.readFile("FORWARD_AUTH_RULES", path) { try ForwardAuthRules(json: $0) }
            },
            secretScanningKeys: try value("SECRET_SCANNING_GITHUB_KEYS").map { path in
                try Self.readFile("SECRET_SCANNING_GITHUB_KEYS", path) { try SecretScanningKeys(json: $0) }
            }
        )
    }

    /// Reads the file `variable` names and parses it, any failure a ``ConfigurationError`` naming the variable.
    static func readFile<Value>(_ variable: String, _ path: String, parse: (Data) throws -> Value) throws -> Value {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigurationError(variable, "names \(path), which cannot be read") }
        do {
            return try parse(data)
        } catch {
            throw ConfigurationError(variable, "(\(path)): \(error)")
        }
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

extension ConfigReader {
    /// The variable `name` (such as `DATABASE_URL`), without surrounding white space or one pair of surrounding
    /// quotes (as `.env` files often write values), or `nil` when unset or blank.
    func setting(_ name: String) -> String? {
        let key = ConfigKey(name.lowercased().split(separator: "_").map(String.init))
        guard var text = string(forKey: key, isSecret: AppConfiguration.secretVariables.contains(name))?.trimmingWhitespace() else { return nil }
        if text.count >= 2, let quote = text.first, quote == "\"" || quote == "'", text.last == quote {
            text = text.dropFirst().dropLast().trimmingWhitespace()
        }
        return text.isEmpty ? nil : String(text)
    }
}
