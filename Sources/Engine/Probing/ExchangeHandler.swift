import NIOCore
import NIOHTTP1
import NIOSSL

#if canImport(Glibc)
    import Glibc
#endif

/// A reused connection that could not carry the request: the server had closed it, or it held stray bytes
/// from an earlier response (`strayBytes`: a body sent after a HEAD response that announced one, as some
/// frameworks do), read before this request's response.
///
/// `unsent` says the request's head never reached the socket whole: the connection was closed (by urlpoll on
/// finding stray bytes, or by the server while it sat idle) between being handed out and the write, or the
/// write itself failed. Such a request cannot have been acted on, so ``HTTP1Client`` sends it again on a new
/// connection whatever its method, as Go's net/http does (`nothingWrittenError` in its transport); one whose
/// head was written goes again only if its method is idempotent (RFC 9110 §9.2.2).
struct StaleConnection: Error {
    var strayBytes = false
    var unsent = false
}

/// Exchange is one request on its way to the handler, with the promise its outcome completes.
struct Exchange: Sendable {
    struct Outcome: Sendable {
        var response: HTTP1Client.Response
        /// Whether the connection can carry another request.
        var reusable: Bool
    }

    var head: HTTPRequestHead
    var body: [UInt8]?
    var deadline: NIODeadline
    var captureBody: Bool
    var maximumBodySize: Int
    /// What opening the connection showed, on its first exchange (`nil` on a reused connection: the
    /// handler keeps it from the first).
    var opened: ConnectionFacts?
    var promise: EventLoopPromise<Outcome>
}

/// ConnectionFacts is what opening a connection showed, kept by its handler and reported with every
/// response it carries.
struct ConnectionFacts: Sendable {
    /// 4 or 6 (`probe_ip_protocol`).
    var ipProtocol: Int?
    /// The TLS handshake's version and the chain the server presented, on an `https://` connection.
    var tls: TLSFacts?
}

/// ExchangeHandler runs one exchange at a time on its connection: writes the request, reads the response
/// (discarding the body beyond what is kept, and closing the connection once the cap is passed), and fails
/// the exchange if the deadline passes, the server closes, or the response is not HTTP.
final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    private struct Current {
        var exchange: Exchange
        var timer: Scheduled<Void>?
        var head: HTTPResponseHead?
        var body: [UInt8]?
        var read = 0
        /// When the request went out, and when the response's first head (a 1xx one included) came in.
        var sent: NIODeadline
        var firstHead: NIODeadline?
        /// Whether the request's head reached the socket (its write's promise succeeded). Until then the
        /// server cannot have seen the request.
        var written = false
    }

    private var current: Current?
    /// What opening the connection showed.
    private var connection = ConnectionFacts()
    /// Whether the connection has carried a request before this one.
    private var used = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = self.unwrapOutboundIn(data)
        promise?.succeed()
        guard self.current == nil, context.channel.isActive else {
            // Closed (stray bytes, or the server's close) after the pool handed the connection out: nothing
            // of this request was written.
            exchange.promise.fail(StaleConnection(unsent: true))
            return
        }
        if let opened = exchange.opened { self.connection = opened }
        var current = Current(exchange: exchange, sent: .now())
        current.body = exchange.captureBody ? [] : nil
        let loop = context.eventLoop.assumeIsolated()
        current.timer = loop.scheduleTask(deadline: exchange.deadline) { [context] in
            self.finish(context, .failure(ProbeFailure(.timeout, detail: "")), close: true)
        }
        self.current = current
        let headWritten = context.eventLoop.makePromise(of: Void.self)
        headWritten.futureResult.assumeIsolated().whenSuccess {
            // Still this exchange's: the next one is written only after this one is finished.
            if self.current != nil { self.current!.written = true }
        }
        context.write(self.wrapOutboundOut(.head(exchange.head)), promise: headWritten)
        if let body = exchange.body, !body.isEmpty {
            context.write(
                self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.current != nil else {
            // Bytes nobody asked for (a body after a HEAD response, a second response): the connection's
            // framing can no longer be trusted, so it is not used again.
            context.close(promise: nil)
            return
        }
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            if self.current!.firstHead == nil { self.current!.firstHead = .now() }
            // 1xx heads are informational; the response proper follows.
            if head.status.code >= 200 || head.status.code < 100 { self.current!.head = head }
        case .body(let buffer):
            let cap = self.current!.exchange.maximumBodySize
            if self.current!.body != nil {
                let room = max(0, cap - self.current!.read)
                self.current!.body!.append(contentsOf: buffer.readableBytesView.prefix(room))
            }
            self.current!.read += buffer.readableBytes
            if self.current!.read >= cap, let head = self.current!.head {
                // Enough: the rest is not read, so the connection cannot be reused.
                let outcome = Exchange.Outcome(response: self.response(head), reusable: false)
                self.finish(context, .success(outcome), close: true)
            }
        case .end:
            guard let head = self.current!.head else { return }
            let outcome = Exchange.Outcome(response: self.response(head), reusable: head.isKeepAlive)
            self.finish(context, .success(outcome), close: !head.isKeepAlive)
        }
    }

    /// The response to the current exchange, with its processing (request sent to the first response head)
    /// and transfer (that head to now) times.
    private func response(_ head: HTTPResponseHead) -> HTTP1Client.Response {
        let current = self.current!
        let now = NIODeadline.now()
        let first = current.firstHead ?? now
        let timings = PhaseTimings(
            processing: .nanoseconds((first - current.sent).nanoseconds),
            transfer: .nanoseconds((now - first).nanoseconds))
        return HTTP1Client.Response(
            head: head, body: current.body, bodyLength: min(current.read, current.exchange.maximumBodySize),
            timings: timings,
            ipProtocol: self.connection.ipProtocol, tls: self.connection.tls)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Only a connection that has carried a request idles out: a new one is about to get its first.
        // A request racing the close on a reused one is sent again on a new connection.
        if event is IdleStateHandler.IdleStateEvent, self.current == nil, self.used {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let current = self.current {
            let error: any Error
            if current.head != nil {
                error = ProbeFailure(.reset, detail: "the server closed the connection before the end of the body")
            } else if self.used {
                error = StaleConnection(unsent: !current.written)
            } else {
                error = HTTP1Client.closedBeforeResponse
            }
            self.finish(context, .failure(error), close: false)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.current != nil, let unclean = error as? NIOSSLError, case .uncleanShutdown = unclean {
            // TLS closed without a close_notify (the server's TCP close, RFC 8446 §6.1): the same as a close.
            context.close(promise: nil)
        } else if let current = self.current, current.head == nil, self.used, let io = error as? IOError,
            io.errnoCode == ECONNRESET || io.errnoCode == EPIPE
        {
            self.finish(context, .failure(StaleConnection(unsent: !current.written)), close: true)
        } else if let current = self.current, current.head == nil, self.used, error is HTTPParserError {
            // Not HTTP before this response's head, on a reused connection: bytes left over from the
            // previous response. This URL is not judged by them; the connection is dropped.
            self.finish(
                context, .failure(StaleConnection(strayBytes: true, unsent: !current.written)), close: true)
        } else if self.current != nil {
            self.finish(context, .failure(error), close: true)
        } else {
            context.close(promise: nil)
        }
    }

    private func finish(
        _ context: ChannelHandlerContext, _ result: Result<Exchange.Outcome, any Error>, close: Bool
    ) {
        guard let current = self.current else { return }
        self.current = nil
        self.used = true
        current.timer?.cancel()
        if close { context.close(promise: nil) }
        current.exchange.promise.completeWith(result)
    }
}
