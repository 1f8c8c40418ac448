import Foundation
import Testing
import TokenCrypto

@testable import Tessera

@Suite("Configuration")
struct ConfigurationTests {
    private static let hashKey = String(repeating: "ab", count: 32)
    private static let valid = [
        "DATABASE_URL": "postgresql://tessera:secret@127.0.0.1:5432/tessera?sslmode=disable",
        "TOKEN_HASH_KEY": hashKey,
        "API_KEY": "dev-secret-key-12345",
    ]

    private func error(_ changes: [String: String?]) -> ConfigurationError? {
        var environment = Self.valid
        for (key, value) in changes { environment[key] = value }
        do {
            _ = try AppConfiguration(environment: environment)
            return nil
        } catch {
            return error as? ConfigurationError
        }
    }

    @Test func defaultsMatchTheOriginalService() throws {
        let configuration = try AppConfiguration(environment: Self.valid)
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 3000)
        #expect(configuration.tokenPrefix.rawValue == "tsr")
        #expect(configuration.hasher.currentKey.id == 1)
        #expect(configuration.apiKeys.caller(presenting: "dev-secret-key-12345") == Caller(name: "admin", role: .admin))
    }

    @Test(arguments: [
        ("DATABASE_URL", nil as String?),
        ("DATABASE_URL", "mysql://x@y/z"),
        ("DATABASE_URL", "postgresql://127.0.0.1/tessera"),
        ("DATABASE_URL", "postgresql://u@127.0.0.1/"),
        ("DATABASE_URL", "postgresql://u@127.0.0.1/db?sslmode=sometimes"),
        ("TOKEN_HASH_KEY", nil),
        ("TOKEN_HASH_KEY", "abcd"),
        ("TOKEN_HASH_KEY", String(repeating: "zz", count: 32)),
        ("TOKEN_HASH_KEY_ID", "0"),
        ("TOKEN_HASH_OLD_KEYS", "1:\(String(repeating: "cd", count: 32))"),
        ("TOKEN_HASH_OLD_KEYS", "2:short"),
        ("API_KEY", "short"),
        ("PORT", "70000"),
        ("PORT", "http"),
        ("TOKEN_PREFIX", "Bad_Prefix"),
        ("LOG_LEVEL", "loud"),
        ("MAX_BODY_BYTES", "10"),
        ("DATABASE_TIMEOUT_SECONDS", "0"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,somewhere"),
        ("RATE_LIMIT_ADMIN", "lots"),
        ("RATE_LIMIT_AUTH_FAILURES", "500/60s"),
        ("DATABASE_READ_URL", "postgresql://replica/db, mysql://other/db"),
        ("DATABASE_READ_MAX_LAG_MS", "5"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_PREPARED_STATEMENTS", "yes"),
    ])
    func aBadValueStopsStartUpNamingTheVariable(variable: String, value: String?) {
        let failure = error([variable: value])
        #expect(failure?.variable == variable, "\(String(describing: failure))")
    }

    @Test func missingKeysAreNamed() {
        #expect(error(["API_KEY": nil])?.variable == "API_KEY")
    }

    @Test func errorsNeverEchoTheSecretValue() {
        let secret = "short-secret"
        let failure = error(["API_KEY": secret])
        #expect(failure != nil)
        #expect(!(failure?.description.contains(secret) ?? true))
        let urlFailure = error(["DATABASE_URL": "postgresql://u:hunter2@127.0.0.1/db?sslmode=maybe"])
        #expect(!(urlFailure?.description.contains("hunter2") ?? true))
    }

    @Test func oldHashKeysAreRead() throws {
        var environment = Self.valid
        environment["TOKEN_HASH_KEY_ID"] = "3"
        environment["TOKEN_HASH_OLD_KEYS"] = "1:\(String(repeating: "01", count: 32)), 2:\(String(repeating: "02", count: 32))"
        let hasher = try AppConfiguration(environment: environment).hasher
        #expect(hasher.currentKey.id == 3)
        #expect(hasher.previousKeys.map(\.id) == [1, 2])
    }

    @Test func databaseURLsParseWithTheirTLSModes() throws {
        let url = try DatabaseURL("postgres://app%40x:p%2Fw@db.internal:6432/tokens_db?sslmode=verify-full")
        #expect(url.username == "app@x")
        #expect(url.password == "p/w")
        #expect(url.host == "db.internal")
        #expect(url.port == 6432)
        #expect(url.database == "tokens_db")
        #expect(url.tlsMode == .verifyFull)
        #expect(!url.description.contains("p/w"))
        #expect(try DatabaseURL("postgresql://tokenuser:tokenpass@localhost:5432/tokens_db").tlsMode == .prefer)
        #expect(try DatabaseURL("postgresql://u@/db?host=/var/run/postgresql").host == "/var/run/postgresql")
        let pinned = try DatabaseURL("postgresql://u@db/x?sslrootcert=/etc/ssl/db-ca.pem")
        #expect(pinned.tlsMode == .verifyFull && pinned.rootCertificatePath == "/etc/ssl/db-ca.pem")
        #expect(throws: ConfigurationError.self) { try DatabaseURL("postgresql://u@db/x?sslcert=/client.pem") }
    }

    @Test func aDatabaseOverTheNetworkWithoutVerifyFullIsExposed() throws {
        for text in ["postgresql://u@db.internal/x", "postgresql://u@10.0.0.5/x?sslmode=require", "postgresql://u@127.example.com/x"] {
            #expect(try DatabaseURL(text).isExposedInTransit, "\(text)")
        }
        for text in [
            "postgresql://u@db.internal/x?sslmode=verify-full", "postgresql://u@localhost/x", "postgresql://u@127.0.0.1/x?sslmode=disable",
            "postgresql://u@[::1]/x", "postgresql://u@/x?host=/var/run/postgresql",
        ] {
            #expect(try !DatabaseURL(text).isExposedInTransit, "\(text)")
        }
    }

    @Test func readReplicasAreACommaSeparatedList() throws {
        var environment = Self.valid
        environment["DATABASE_READ_URL"] = "postgresql://u:p@replica-1:5433/tokens, postgresql://u:p@replica-2/tokens?sslmode=require"
        environment["DATABASE_READ_MAX_LAG_MS"] = "250"
        let configuration = try AppConfiguration(environment: environment)
        #expect(configuration.databaseReadURLs.map(\.address) == ["replica-1:5433/tokens", "replica-2:5432/tokens"])
        #expect(configuration.databaseReadMaximumLag == .milliseconds(250))
        #expect(try AppConfiguration(environment: Self.valid).databaseReadURLs.isEmpty)
    }

    @Test func aServingPoolHasItsSizeAndTimeoutAndNoKeepAliveTimers() throws {
        let pool = try DatabaseURL("postgresql://u:p@db:5432/tokens").poolConfiguration(size: 7, timeout: .seconds(3))
        #expect(pool.options.maximumConnections == 7 && pool.options.connectTimeout == .seconds(3))
        #expect(pool.options.keepAliveBehavior == nil && pool.options.connectionIdleTimeout == .seconds(60))
    }

    @Test func statementsArePreparedUnlessTurnedOff() throws {
        #expect(try AppConfiguration(environment: Self.valid).databasePreparesStatements)
        let off = try AppConfiguration(environment: Self.valid.merging(["DATABASE_PREPARED_STATEMENTS": "off"]) { $1 })
        #expect(!off.databasePreparesStatements)
    }

    @Test func connectionLimitsHaveSaneDefaultsAndBounds() throws {
        let defaults = try AppConfiguration(environment: Self.valid)
        #expect(defaults.idleTimeout == .seconds(60) && defaults.readTimeout == .seconds(10) && defaults.maximumConnections == 10_000)
        #expect(defaults.rateLimits.endClient == RateLimitPolicy(name: "end-client", quota: 600, window: 60))
        var environment = Self.valid
        environment["HTTP_IDLE_TIMEOUT_SECONDS"] = "30"
        environment["HTTP_READ_TIMEOUT_SECONDS"] = "5"
        environment["HTTP_MAX_CONNECTIONS"] = "500"
        environment["RATE_LIMIT_END_CLIENT"] = "100/10s"
        let set = try AppConfiguration(environment: environment)
        #expect(set.idleTimeout == .seconds(30) && set.readTimeout == .seconds(5) && set.maximumConnections == 500)
        #expect(set.rateLimits.endClient.quota == 100)
        for (name, value) in [("HTTP_IDLE_TIMEOUT_SECONDS", "0"), ("HTTP_READ_TIMEOUT_SECONDS", "301"), ("HTTP_MAX_CONNECTIONS", "many")] {
            #expect(throws: ConfigurationError.self) { try AppConfiguration(environment: Self.valid.merging([name: value]) { $1 }) }
        }
    }

    @Test func dotEnvFilesAreReadAndRealVariablesWin() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-env-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent(".env").path
        try "# comment\nPORT=4000\nHOST=0.0.0.0\nAPI_KEY=\"quoted value\"\nTOKEN_PREFIX='tsr'\nnot an assignment\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let reader = try await AppConfiguration.environmentReader(environment: ["PORT": "5000"], dotEnvPath: path)
        #expect(reader.setting("PORT") == "5000")
        #expect(reader.setting("HOST") == "0.0.0.0")
        #expect(reader.setting("API_KEY") == "quoted value")
        #expect(reader.setting("TOKEN_PREFIX") == "tsr")
        #expect(reader.setting("API_KEYS") == nil)
    }
}

@Suite("API keys")
struct APIKeyTests {
    @Test func rightKeyGetsItsRoleAndWrongKeysNothing() throws {
        let ring = try APIKeyRing.parse(apiKey: nil, apiKeys: "ops:admin:ops-secret-0123456789, gw:verifier:gateway-secret-012345")
        #expect(ring.caller(presenting: "ops-secret-0123456789") == Caller(name: "ops", role: .admin))
        #expect(ring.caller(presenting: "gateway-secret-012345") == Caller(name: "gw", role: .verifier))
        for wrong in ["", "ops-secret-012345678", "ops-secret-0123456789 ", "OPS-SECRET-0123456789", "gw", String(repeating: "x", count: 100_000)] {
            #expect(ring.caller(presenting: wrong) == nil)
        }
    }

    @Test func digestFormKeysWork() throws {
        let secret = "a-key-that-never-sits-in-config"
        let digest = Hex.encode(Blake2b.hash(Array(secret.utf8)))
        let ring = try APIKeyRing.parse(apiKey: nil, apiKeys: "edge:verifier:blake2b:\(digest)")
        #expect(ring.caller(presenting: secret) == Caller(name: "edge", role: .verifier))
        #expect(ring.caller(presenting: "blake2b:\(digest)") == nil)
        #expect(ring.caller(presenting: digest) == nil)
    }

    @Test func generatedEntriesRoundTrip() throws {
        let secret = APIKeyRing.generateSecret()
        #expect(secret.hasPrefix("tsk_") && secret.count == 47)
        let entry = APIKeyCredential(name: "ci", role: .admin, secret: secret).configurationEntry
        #expect(!entry.contains(secret))
        let ring = try APIKeyRing.parse(apiKey: nil, apiKeys: entry)
        #expect(ring.caller(presenting: secret) == Caller(name: "ci", role: .admin))
    }

    @Test(arguments: [
        "x:admin", "x:root:secret-secret-secret", "bad name:admin:secret-secret-secret", "x:admin:short", "x:admin:blake2b:abcd",
        "x:admin:secret-secret-secret,x:verifier:other-secret-secret",
        "x:admin:secret-secret-secret,y:verifier:secret-secret-secret",
    ])
    func malformedEntriesAreRefused(entry: String) {
        #expect(throws: ConfigurationError.self) { try APIKeyRing.parse(apiKey: nil, apiKeys: entry) }
    }

    @Test func apiKeyAndAPIKeysCombine() throws {
        let ring = try APIKeyRing.parse(apiKey: "dev-secret-key-12345", apiKeys: "gw:verifier:gateway-secret-012345")
        #expect(ring.credentials.map(\.name) == ["admin", "gw"])
        // Each secret authenticates as its own key, with its own role.
        #expect(ring.caller(presenting: "dev-secret-key-12345") == Caller(name: "admin", role: .admin))
        #expect(ring.caller(presenting: "gateway-secret-012345") == Caller(name: "gw", role: .verifier))
        #expect(ring.caller(presenting: "gateway-secret-01234") == nil)
    }
}
