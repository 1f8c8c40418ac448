import Crypto
import Foundation
import NIOCore

/// GitHub's secret scanning public keys, by identifier, as GitHub publishes them.
///
/// libsodium has no P-256, so GitHub's ECDSA P-256 signatures are checked with swift-crypto (already built for
/// PostgresNIO); nothing secret passes through it.
public struct SecretScanningKeys: Sendable {
    /// The keys by their `key_identifier`.
    let keys: [String: P256.Signing.PublicKey]

    /// A key file that cannot be used, saying which entry and why.
    public struct InvalidKeys: Error, CustomStringConvertible {
        public var description: String
    }

    /// Whether `signature` (base64 DER, `Github-Public-Key-Signature`) signs `body` with the key `identifier` names.
    func isValid(signature: String, keyIdentifier identifier: String, body: ByteBuffer) -> Bool {
        guard let key = keys[identifier], let der = Data(base64Encoded: signature),
            let signature = try? P256.Signing.ECDSASignature(derRepresentation: der)
        else { return false }
        return key.isValidSignature(signature, for: body.readableBytesView)
    }
}
