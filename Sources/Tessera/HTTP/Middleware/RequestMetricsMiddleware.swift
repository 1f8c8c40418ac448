import Dispatch
import HTTPTypes
import Hummingbird
import Metrics
import Synchronization

/// Counts and times every request under Hummingbird's metric names, leaving the response body as it is.
///
/// Hummingbird's own `MetricsMiddleware` records once the body has been written, by wrapping every body in a closure;
/// a closure body makes the server send the head and the body in separate writes, each a hop to the event loop and a
/// system call. Every Tessera body is a buffer already in memory, so the response is timed when it is ready to send
/// and goes out in one write.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    private let series = SeriesCache()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now()
        let inProgress = series.inProgress(method: request.method)
        inProgress.increment()
        defer { inProgress.decrement() }
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            // Only errors that escape the problem middleware reach here: Hummingbird answers them itself.
            series.record(route: context.endpointPath, method: request.method, status: Self.status(answering: error), since: start)
            throw error
        }
        series.record(route: context.endpointPath, method: request.method, status: response.status, since: start)
        return response
    }

    /// The status Hummingbird answers `error` with.
    private static func status(answering error: any Error) -> HTTPResponse.Status {
        (error as? any HTTPResponseError)?.status ?? .internalServerError
    }
}

/// The metrics of each method and of each route, method and status seen, made once.
private final class SeriesCache: Sendable {
    /// One route, method and status.
    private struct Key: Hashable {
        var route: String
        var method: HTTPRequest.Method
        var status: HTTPResponse.Status
    }

    /// `hb_requests` and `http_server_request_duration` for one key.
    private struct AnswerMetrics {
        let count: Counter
        let duration: Timer

        init(_ key: Key) {
            let dimensions = [
                ("http.route", key.route),
                ("http.request.method", key.method.rawValue),
                ("http.response.status_code", String(key.status.code)),
            ]
            count = Counter(label: "hb.requests", dimensions: dimensions)
            duration = Timer(label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds)
        }
    }

    private let answerMetrics = Mutex<[Key: AnswerMetrics]>([:])
    private let inProgressMeters = Mutex<[HTTPRequest.Method: Meter]>([:])

    /// `http_server_active_requests` for `method`.
    func inProgress(method: HTTPRequest.Method) -> Meter {
        inProgressMeters.withLock { meters in
            if let meter = meters[method] { return meter }
            let meter = Meter(label: "http.server.active_requests", dimensions: [("http.request.method", method.rawValue)])
            meters[method] = meter
            return meter
        }
    }

    /// Counts one answer and records its time since `start`; a request no route matched is labelled `NotFound`,
    /// as Hummingbird labels it.
    func record(route: String?, method: HTTPRequest.Method, status: HTTPResponse.Status, since start: DispatchTime) {
        let key = Key(route: route ?? "NotFound", method: method, status: status)
        let metrics = answerMetrics.withLock { series in
            if let metrics = series[key] { return metrics }
            let metrics = AnswerMetrics(key)
            series[key] = metrics
            return metrics
        }
        metrics.count.increment()
        metrics.duration.recordInterval(since: start)
    }
}
