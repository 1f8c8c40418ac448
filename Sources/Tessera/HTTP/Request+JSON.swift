import Foundation
import Hummingbird

/// The largest request body read, in bytes; a larger one is refused with `413` before it is buffered.
let maximumBodySize = 64 * 1024

extension Request {
    /// Reads the body as one JSON object: `415` for another media type, `413` past the size cap, `400` for anything else.
    mutating func jsonObject(context: some RequestContext) async throws -> [String: JSONValue] {
        guard let contentType = headers[.contentType].flatMap(MediaType.init(from:)), contentType.isType(.applicationJson) else {
            throw APIError.unsupportedMediaType
        }
        let body = try await collectBody(upTo: maximumBodySize)
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView))
        } catch {
            throw APIError.malformedBody("The body is not valid JSON.")
        }
        guard case .object(let object) = value else { throw APIError.malformedBody("The body must be a JSON object.") }
        return object
    }
}
