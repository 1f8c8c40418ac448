import Crypto
import Foundation

extension SecretScanningKeys {
    /// Reads `{"public_keys": [{"key_identifier", "key"}]}` (GitHub's document) or the bare array, each `key` a PEM
    /// P-256 public key, parsed as strictly as request bodies (a repeated key is refused).
    public init(json: Data) throws {
        let document = try? JSONParser.parse([UInt8](json))
        var entries: [JSONValue] = []
        if case .array(let array)? = document { entries = array }
        if case .object(let object)? = document, case .array(let array)? = object["public_keys"] { entries = array }
        guard !entries.isEmpty else {
            throw InvalidKeys(description: "must hold GitHub's {\"public_keys\": [...]} document or a non-empty array of {\"key_identifier\", \"key\"}")
        }
        var keys: [String: P256.Signing.PublicKey] = [:]
        for (index, entry) in entries.enumerated() {
            guard case .object(let object) = entry, case .string(let identifier)? = object["key_identifier"], !identifier.isEmpty,
                case .string(let pem)? = object["key"]
            else { throw InvalidKeys(description: "entry \(index) needs key_identifier and key") }
            guard let key = try? P256.Signing.PublicKey(pemRepresentation: pem) else {
                throw InvalidKeys(description: "entry \(index) (\(identifier)) has a key that is not a P-256 public key in PEM form")
            }
            keys[identifier] = key
        }
        self.init(keys: keys)
    }
}
