import HTTPTypes
import Hummingbird
import Synchronization

/// The paths the router serves and the methods each accepts, read from the router once every route is added.
final class RouteTable: Sendable {
    private let entries = Mutex<[(path: RouterPath, methods: [HTTPRequest.Method])]>([])

    /// Records the router's routes.
    func record<Context>(_ routes: [Router<Context>.RouteDescription]) {
        var entries: [(path: RouterPath, methods: [HTTPRequest.Method])] = []
        for route in routes {
            if let index = entries.firstIndex(where: { $0.path == route.path }) {
                entries[index].methods.append(route.method)
            } else {
                entries.append((route.path, [route.method]))
            }
        }
        self.entries.withLock { $0 = entries }
    }

    /// The methods accepted at `path`, or `nil` when no route has that path.
    ///
    /// When several routes match, the router takes the most specific (a literal segment before a parameter, as
    /// `/api/tokens/revoke` before `/api/tokens/{id}`), and so does this.
    func methods(at path: String) -> [HTTPRequest.Method]? {
        let segments = path.split(separator: "/")
        let matching = entries.withLock { entries in
            entries.filter { entry in
                entry.path.components.count == segments.count && zip(entry.path.components, segments).allSatisfy { $0 ~= $1 }
            }
        }
        return matching.max { Self.specificity($0.path).lexicographicallyPrecedes(Self.specificity($1.path)) }?.methods
    }

    /// Per segment, 1 for a literal and 0 for a parameter or wildcard: compared in order, the higher is more specific.
    private static func specificity(_ path: RouterPath) -> [Int] {
        path.components.map { component in
            let text = component.description
            return text.contains("{") || text.contains("*") ? 0 : 1
        }
    }
}

/// Answers `405` with `Allow` when a path exists but not for the request's method.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            guard let methods = routes.methods(at: request.uri.path), !methods.contains(request.method) else { throw error }
            let allowed = methods.map(\.rawValue).joined(separator: ", ")
            throw APIError(
                .methodNotAllowed,
                type: "urn:tessera:problem:method-not-allowed",
                detail: "This path accepts \(allowed).",
                headers: [.allow: allowed]
            )
        }
    }
}
