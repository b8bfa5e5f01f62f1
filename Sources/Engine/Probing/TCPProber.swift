import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// TCPProber polls `tcp://host:port`: up when the connection is accepted within the timeout.
///
/// With a `send` string it writes that once connected; with a `check` hook it reads what the server sends
/// back (a banner such as `SSH-2.0-…`, `220 …`, `+PONG`) into `res.body`, until a line ends, the server
/// closes, ``maximumBodySize`` bytes arrive, or the timeout: whichever comes first. Without a hook the
/// connection is closed as soon as it is up (and `send` written). Names resolve on ``NameResolver``.
public struct TCPProber: Prober {
    /// The most bytes read back (default 4 KiB).
    public var maximumBodySize = 4096
    private let group: any EventLoopGroup
    private let resolver: NameResolver

    public init(group: any EventLoopGroup, resolver: NameResolver = .shared) {
        self.group = group
        self.resolver = resolver
    }

    public func probe(_ target: Target, settings: Settings) async -> ProbeResult {
        let start = ContinuousClock.now
        let timeout = settings.timeout(for: target)
        let address: ProbeAddress
        switch ProbeAddress.parse(target.url) {
        case .success(let a): address = a
        case .failure(let error): return .failed(.badURL, error.message)
        }
        let loop = self.group.next()
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.seconds * 1e9))
        let socket: SocketAddress
        switch await self.resolver.resolve(address.host, port: address.port, deadline: deadline, on: loop) {
        case .success(let s): socket = s
        case .failure(let failure): return ProbeResult(.failure(failure), latency: ContinuousClock.now - start)
        }
        let read = target.captureBody
        let promise = loop.makePromise(of: [UInt8].self)
        let limit = self.maximumBodySize
        let send = target.send
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(max(1, (deadline - .now()).nanoseconds)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        BannerHandler(send: send, read: read, limit: limit, deadline: deadline, promise: promise))
                }
            }
            .connect(to: socket)
        connected.whenFailure { promise.fail($0) }
        // A backstop: the connect timeout and the handler's own deadline come first.
        let timer = loop.scheduleTask(deadline: deadline + .milliseconds(100)) {
            promise.fail(ProbeFailure(.timeout, detail: "no connection within \(formatSeconds(timeout.seconds)) s"))
        }
        do {
            let body = try await promise.futureResult.get()
            timer.cancel()
            return ProbeResult(
                .reply(.init("connected")), latency: ContinuousClock.now - start, body: read ? body : nil)
        } catch {
            timer.cancel()
            connected.whenSuccess { $0.close(promise: nil) }
            let failure = Self.inWords(HTTPProber.classify(error, timeout: timeout), "\(address.host):\(address.port)")
            return ProbeResult(.failure(failure), latency: ContinuousClock.now - start)
        }
    }

    /// A connection failure's detail in words naming the address, instead of the socket library's text.
    static func inWords(_ failure: ProbeFailure, _ address: String) -> ProbeFailure {
        switch failure.kind {
        case .refused: ProbeFailure(.refused, detail: "\(address) refused the connection")
        case .unreachable: ProbeFailure(.unreachable, detail: "no route to \(address)")
        case .reset: ProbeFailure(.reset, detail: "\(address) reset the connection")
        default: failure
        }
    }
}

/// BannerHandler writes `send` once the connection is up and reads the reply into one buffer, then closes:
/// at once when nothing is read, otherwise at the end of the first line, at `limit` bytes, or on close.
/// It runs on its channel's event loop and completes `promise` once, at the latest at `deadline` with what
/// was read by then.
final class BannerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let send: [UInt8]?
    private let read: Bool
    private let limit: Int
    private let deadline: NIODeadline
    private let promise: EventLoopPromise<[UInt8]>
    private var received: [UInt8] = []
    private var done = false

    init(send: [UInt8]?, read: Bool, limit: Int, deadline: NIODeadline, promise: EventLoopPromise<[UInt8]>) {
        self.send = send
        self.read = read
        self.limit = limit
        self.deadline = deadline
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        if let send = self.send, !send.isEmpty {
            context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(bytes: send)), promise: nil)
        }
        if self.read {
            // A server that stays silent: what was read by the deadline is the reply.
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let context = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.value.eventLoop.scheduleTask(deadline: self.deadline) { handler.value.finish(context.value) }
        } else {
            self.finish(context)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        guard !self.done else { return }
        let room = self.limit - self.received.count
        if let bytes = buffer.readBytes(length: min(room, buffer.readableBytes)) {
            self.received += bytes
        }
        if self.received.count >= self.limit || self.received.last == UInt8(ascii: "\n") { self.finish(context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish(context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // After a successful connect, a reset still means the port is open: report what was read.
        self.finish(context)
    }

    private func finish(_ context: ChannelHandlerContext) {
        guard !self.done else { return }
        self.done = true
        self.promise.succeed(self.received)
        context.close(promise: nil)
    }
}
