import Foundation

/// Why a presented token is not active, as the verify endpoint reports it.
public enum InactiveReason: String, Sendable, Codable, CaseIterable {
    /// Not a well-formed token, or its checksum is wrong; the database was not asked.
    case malformed = "MALFORMED"
    /// Well formed, but no stored token has its digest.
    case notFound = "NOT_FOUND"
    /// Past its expiry.
    case expired = "EXPIRED"
    /// Revoked.
    case revoked = "REVOKED"
    /// Paused by an admin (`enabled: false`); it can be resumed.
    case disabled = "DISABLED"
    /// The token names its audiences, and the verifying API key is not one of them.
    case wrongAudience = "WRONG_AUDIENCE"
    /// The token names networks, and the end client is outside them or its address is unknown.
    case ipNotAllowed = "IP_NOT_ALLOWED"
    /// Active, but missing a required scope.
    case insufficientScope = "INSUFFICIENT_SCOPE"
    /// Every use the token allows is spent (until its next refill, if it has one).
    case usageExceeded = "USAGE_EXCEEDED"
}

/// Who asks whether a token may be used: the API key's name, and the end client's address when it is known.
public struct Verifier: Sendable, Equatable {
    /// The verifying API key's name, checked against a token's audiences.
    public var name: String
    /// The end client's address, checked against a token's networks.
    public var clientAddress: String?

    /// Creates a verifier.
    public init(name: String, clientAddress: String? = nil) {
        self.name = name
        self.clientAddress = clientAddress
    }
}

/// What a leak report found for one reported string.
public enum LeakVerdict: Sendable, Equatable {
    /// Not a token of this service: not in its format, or no stored token has it.
    case notOurs
    /// A token of this service; `revoked` when this report revoked it (it was active).
    case ours(revoked: Bool)
}

/// The outcome of verifying a presented token.
public enum Verification: Sendable, Equatable {
    /// The token is active and carries every required scope.
    case active(TokenRecord)
    /// The token may not be used, and why.
    case inactive(InactiveReason)
    /// The token's own rate limit (`policy`) is spent for now: `RATE_LIMITED`.
    case rateLimited(RateLimitPolicy, RateLimitDecision)

    /// The outcome's code: `ACTIVE`, `RATE_LIMITED` or the inactive reason's.
    public var code: String {
        switch self {
        case .active: "ACTIVE"
        case .inactive(let reason): reason.rawValue
        case .rateLimited: Self.rateLimitedCode
        }
    }

    /// The code of ``rateLimited(_:_:)``.
    public static let rateLimitedCode = "RATE_LIMITED"
    /// Every code an outcome may have.
    public static var codes: [String] { ["ACTIVE"] + InactiveReason.allCases.map(\.rawValue) + [rateLimitedCode] }
}
