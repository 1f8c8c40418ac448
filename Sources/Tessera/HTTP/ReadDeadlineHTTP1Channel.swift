import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// Hummingbird's HTTP/1 channel, with a deadline on reading each request: a connection whose request head and body
/// take longer than `readTimeout` to arrive, counted from the request's first byte, is closed.
///
/// Hummingbird's idle timeout (set in `configuration`) closes a connection on which nothing arrives for a while; it
/// cannot stop a client that trickles a byte at a time. No library handler bounds a whole request's read, so this
/// one does: it watches the raw bytes for a request's start and the decoded parts for its end.
struct ReadDeadlineHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let configuration: HTTP1Channel.Configuration
    let readTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let deadline = RequestReadDeadline(timeout: readTimeout)
        do {
            try channel.pipeline.syncOperations.addHandler(RequestStartHandler(deadline: deadline), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        var configuration = configuration
        configuration.additionalChannelHandlers = { [RequestEndHandler(deadline: deadline)] }
        return HTTP1Channel(responder: responder, configuration: configuration).setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await HTTP1Channel(responder: responder, configuration: configuration).handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 closing connections idle for `idleTimeout` and requests not read whole within `readTimeout`.
    static func http1(idleTimeout: Duration, readTimeout: Duration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            ReadDeadlineHTTP1Channel(
                responder: responder,
                configuration: HTTP1Channel.Configuration(idleTimeout: .nanoseconds(idleTimeout.nanoseconds)),
                readTimeout: .nanoseconds(readTimeout.nanoseconds)
            )
        }
    }
}

/// One connection's request-read deadline, shared by its two handlers; only ever used on the connection's event
/// loop, hence unchecked.
///
/// A request's start and end only note the time: one timer per connection checks, when it fires, whether the
/// request being read is past its deadline, so a busy connection does not schedule and cancel a task per request.
final class RequestReadDeadline: @unchecked Sendable {
    let timeout: TimeAmount
    /// When the request being read started arriving, or `nil` between requests.
    private var readingSince: NIODeadline?
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// A request started arriving: start its clock, unless one is running.
    func requestStarted(_ context: ChannelHandlerContext) {
        guard readingSince == nil else { return }
        let now = NIODeadline.now()
        readingSince = now
        if timer == nil { schedule(at: now + timeout, on: context.eventLoop, closing: context.channel) }
    }

    /// The request has been read whole: stop its clock.
    func requestRead() {
        readingSince = nil
    }

    /// The connection is gone: nothing more to watch.
    func stop() {
        readingSince = nil
        timer?.cancel()
        timer = nil
    }

    private func schedule(at deadline: NIODeadline, on loop: any EventLoop, closing channel: any Channel) {
        timer = loop.scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard let since = readingSince else { return }  // between requests: the next one starts the timer
            if NIODeadline.now() >= since + timeout {
                channel.close(promise: nil)
            } else {
                schedule(at: since + timeout, on: loop, closing: channel)
            }
        }
    }
}

/// Starts the read deadline when bytes arrive while no request is being read.
final class RequestStartHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let deadline: RequestReadDeadline

    init(deadline: RequestReadDeadline) { self.deadline = deadline }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadline.requestStarted(context)
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline.stop()
        context.fireChannelInactive()
    }
}

/// Stops the read deadline at each request's end, and starts it for a request whose head came in the same bytes as
/// the previous request's end (pipelining).
final class RequestEndHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    let deadline: RequestReadDeadline

    init(deadline: RequestReadDeadline) { self.deadline = deadline }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: deadline.requestStarted(context)
        case .body: break
        case .end: deadline.requestRead()
        }
        context.fireChannelRead(data)
    }
}
