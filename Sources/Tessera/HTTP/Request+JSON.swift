import Foundation
import Hummingbird

extension Request {
    /// Reads the body as one JSON object: `415` for another media type, `413` past `maximumSize` bytes (refused
    /// before more is buffered), `400` for anything else.
    func jsonObject(context: some RequestContext, maximumSize: Int) async throws -> [String: JSONValue] {
        guard let contentType = headers[.contentType].flatMap(MediaType.init(from:)), contentType.isType(.applicationJson) else {
            throw APIError.unsupportedMediaType
        }
        let body = try await self.body.collect(upTo: maximumSize)
        let value: JSONValue
        do {
            value = try JSONParser.parse(body)
        } catch {
            throw APIError.malformedBody("The body is not valid JSON (or repeats a key, or nests deeper than \(JSONParser.maximumDepth)).")
        }
        guard case .object(let object) = value else { throw APIError.malformedBody("The body must be a JSON object.") }
        return object
    }
}
