import Foundation
import NIOSSL
import PostgresNIO

/// A `DATABASE_URL` such as `postgresql://user:password@host:5432/db?sslmode=require`, parsed into a client configuration.
public struct DatabaseURL: Sendable, CustomStringConvertible {
    /// How the client uses TLS, after libpq's `sslmode` (`disable`, `prefer`, `require`, `verify-full`).
    public enum TLSMode: String, Sendable {
        case disable
        case prefer
        case require
        case verifyFull = "verify-full"
    }

    /// The server's host name or address, or a socket directory when it starts with `/`.
    public var host: String

    /// Whether the connection leaves this machine unauthenticated: the server is not on loopback or a Unix
    /// socket, and `sslmode` is weaker than `verify-full`, so the link can be read or the server impersonated.
    public var isExposedInTransit: Bool {
        let loopback = host.hasPrefix("/") || ["localhost", "::1", "[::1]"].contains(host.lowercased())
            || (host.hasPrefix("127.") && host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." })
        return tlsMode != .verifyFull && !loopback
    }
    /// The server's port.
    public var port: Int
    /// The role to connect as.
    public var username: String
    /// The role's password, if any.
    public var password: String?
    /// The database name.
    public var database: String
    /// The TLS mode.
    public var tlsMode: TLSMode
    /// A PEM file of CA certificates to verify the server against (`sslrootcert`), instead of the system's.
    public var rootCertificatePath: String?

    /// Parses `text`, throwing a ``ConfigurationError`` that names `variable` (never the password).
    public init(_ text: String, variable: String = "DATABASE_URL") throws {
        func invalid(_ problem: String) -> ConfigurationError { ConfigurationError(variable, problem) }
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            ["postgres", "postgresql"].contains(scheme.lowercased())
        else {
            throw invalid("must look like postgresql://user:password@host:5432/database")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { _, last in last }
        guard let username = components.user.flatMap({ $0.removingPercentEncoding }), !username.isEmpty else {
            throw invalid("must name a user (postgresql://user@host/database)")
        }
        let database = components.path.drop { $0 == "/" }
        guard !database.isEmpty else { throw invalid("must name a database after the host (…/database)") }
        guard let host = query["host"] ?? components.host.flatMap({ $0.removingPercentEncoding }), !host.isEmpty else {
            throw invalid("must name a host")
        }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw invalid("has a port outside 1-65535") }
        let known: Set<String> = ["sslmode", "sslrootcert", "host"]
        if let unknown = query.keys.sorted().first(where: { !known.contains($0) }) {
            throw invalid("has the parameter \(unknown), which Tessera does not read (it reads sslmode, sslrootcert and host)")
        }
        self.rootCertificatePath = query["sslrootcert"]
        let mode = query["sslmode"] ?? (rootCertificatePath == nil ? "prefer" : "verify-full")
        switch mode {
        case "verify-ca": self.tlsMode = .verifyFull
        default:
            guard let tlsMode = TLSMode(rawValue: mode) else {
                throw invalid("has sslmode=\(mode); use disable, prefer, require or verify-full")
            }
            self.tlsMode = tlsMode
        }
        self.host = host
        self.port = port
        self.username = username
        self.password = components.password.flatMap { $0.removingPercentEncoding }
        self.database = String(database.removingPercentEncoding ?? String(database))
    }

    /// `host:port/database`: how logs and metrics name the server, without credentials.
    public var address: String { "\(host):\(port)/\(database)" }

    /// The PostgresNIO configuration for this URL.
    public var clientConfiguration: PostgresClient.Configuration {
        if host.hasPrefix("/") {
            return .init(unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: username, password: password, database: database)
        }
        return .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }

    /// The server's configuration with the pool a serving instance uses: at most `size` connections, each given
    /// `timeout` to connect.
    ///
    /// Without keep-alive queries: PostgresNIO arms a keep-alive timer, a task of its own, each time a connection
    /// goes back to the pool and cancels it at the next lease, which cost the list about a fifth of its server CPU
    /// (docs/performance.md). A connection idle for `connectionIdleTimeout` (60 s) is closed instead, and one
    /// that the server or a pooler closes is dropped at once (another opens when next needed).
    public func poolConfiguration(size: Int, timeout: Duration) -> PostgresClient.Configuration {
        var configuration = clientConfiguration
        configuration.options.maximumConnections = size
        configuration.options.connectTimeout = timeout
        configuration.options.keepAliveBehavior = nil
        return configuration
    }

    private var tls: PostgresClient.Configuration.TLS {
        switch tlsMode {
        case .disable: .disable
        case .prefer: .prefer(tlsConfiguration)
        case .require, .verifyFull: .require(tlsConfiguration)
        }
    }

    /// The TLS settings for `tlsMode`: `prefer` and `require` encrypt without checking the certificate (as libpq's
    /// modes of those names do); `verify-full` checks it against the system's or `sslrootcert`'s CAs.
    private var tlsConfiguration: TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if tlsMode == .verifyFull {
            if let rootCertificatePath { configuration.trustRoots = .file(rootCertificatePath) }
        } else {
            configuration.certificateVerification = .none
        }
        return configuration
    }

    /// The URL with its password masked, safe to log.
    public var description: String {
        "postgresql://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)?sslmode=\(tlsMode.rawValue)"
    }
}
