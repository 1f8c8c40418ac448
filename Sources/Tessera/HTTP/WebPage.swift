import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The management page: three static files read once at start-up and served from memory.
///
/// Only these names are served, so no request path ever reaches the file system.
struct WebPage: Sendable {
    /// The page's Content-Security-Policy: its own scripts, styles and API calls, nothing else.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        + "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

    private static let files = [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "app.css", "text/css; charset=utf-8"),
    ]

    private let responses: [(path: String, body: ByteBuffer, contentType: String)]

    /// Reads the page from `directory`, or returns `nil` (logging why) if a file is missing.
    init?(directory: String, logger: Logger) {
        var responses: [(String, ByteBuffer, String)] = []
        for (path, file, contentType) in Self.files {
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(file)") else {
                logger.warning("management page not served: \(directory)/\(file) is missing (set PUBLIC_DIR)")
                return nil
            }
            responses.append((path, ByteBuffer(bytes: data), contentType))
        }
        self.responses = responses
    }

    /// Adds a GET route for each file.
    func addRoutes(to router: Router<TesseraRequestContext>) {
        for (path, body, contentType) in responses {
            router.get(RouterPath(path)) { _, _ in
                Response(
                    status: .ok,
                    headers: [.contentType: contentType, .contentSecurityPolicy: Self.contentSecurityPolicy],
                    body: .init(byteBuffer: body)
                )
            }
        }
    }
}
