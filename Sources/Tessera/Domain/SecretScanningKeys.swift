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

    /// Reads `{"public_keys": [{"key_identifier", "key"}]}` (GitHub's document) or the bare array, each `key` a PEM
    /// P-256 public key.
    public init(json: Data) throws {
        let document = try? JSONSerialization.jsonObject(with: json)
        guard let entries = (document as? [String: Any])?["public_keys"] as? [Any] ?? document as? [Any], !entries.isEmpty else {
            throw InvalidKeys(description: "must hold GitHub's {\"public_keys\": [...]} document or a non-empty array of {\"key_identifier\", \"key\"}")
        }
        var keys: [String: P256.Signing.PublicKey] = [:]
        for (index, entry) in entries.enumerated() {
            guard let object = entry as? [String: Any], let identifier = object["key_identifier"] as? String, !identifier.isEmpty,
                let pem = object["key"] as? String
            else { throw InvalidKeys(description: "entry \(index) needs key_identifier and key") }
            guard let key = try? P256.Signing.PublicKey(pemRepresentation: pem) else {
                throw InvalidKeys(description: "entry \(index) (\(identifier)) has a key that is not a P-256 public key in PEM form")
            }
            keys[identifier] = key
        }
        self.keys = keys
    }

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
