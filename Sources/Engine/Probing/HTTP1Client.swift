import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// HTTP1Client is the prober's fast path for plain `http://` URLs: one request at a time on a kept-alive
/// HTTP/1.1 connection, the whole exchange (write, read, deadline) run by one channel handler on the
/// connection's event loop, and idle connections kept per host for the next poll.
///
/// It does what a poll needs and nothing else: no TLS, no redirects, no request body. ``HTTPProber`` sends
/// everything else, and every redirect it sees here, through AsyncHTTPClient.
final class HTTP1Client: Sendable {
    /// Where a request goes: what a plain `http://` URL splits into.
    struct Endpoint: Hashable, Sendable {
        var host: String
        var port: Int
        /// The `Host` header: the host, with the port when it is not 80.
        var authority: String
        /// Path and query, as sent on the request line.
        var path: String

        /// Splits `url`, or returns nil when the fast path does not handle it (another scheme, user info,
        /// a fragment-only oddity): AsyncHTTPClient then takes the request and says what is wrong.
        init?(_ url: String) {
            // Scanned as UTF-8 bytes: this runs on every poll.
            let bytes = url.utf8
            guard bytes.count > 7, bytes.starts(with: "http://".utf8) else { return nil }
            let rest = bytes.index(bytes.startIndex, offsetBy: 7)
            var end = rest
            while end != bytes.endIndex {
                let byte = bytes[end]
                if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") { break }
                // User info needs AsyncHTTPClient.
                if byte == UInt8(ascii: "@") { return nil }
                end = bytes.index(after: end)
            }
            guard end != rest else { return nil }
            let authority = url[rest..<end]
            var pathEnd = end
            while pathEnd != bytes.endIndex {
                let byte = bytes[pathEnd]
                if byte == UInt8(ascii: "#") { break }
                if byte <= 0x20 || byte >= 0x7f { return nil }
                pathEnd = bytes.index(after: pathEnd)
            }
            let path = url[end..<pathEnd]
            if path.isEmpty {
                self.path = "/"
            } else if path.utf8.first == UInt8(ascii: "?") {
                self.path = "/" + path
            } else {
                self.path = String(path)
            }
            var host = authority
            var port = 80
            if authority.utf8.first == UInt8(ascii: "[") {
                // [IPv6]:port
                guard let close = authority.utf8.firstIndex(of: UInt8(ascii: "]")) else { return nil }
                host = authority[authority.utf8.index(after: authority.startIndex)..<close]
                let after = authority[authority.utf8.index(after: close)...]
                if !after.isEmpty {
                    guard after.utf8.first == UInt8(ascii: ":"), let p = Int(after.dropFirst()), (1...65535).contains(p)
                    else { return nil }
                    port = p
                }
            } else if let colon = authority.utf8.lastIndex(of: UInt8(ascii: ":")) {
                guard let p = Int(authority[authority.utf8.index(after: colon)...]), (1...65535).contains(p) else {
                    return nil
                }
                host = authority[..<colon]
                port = p
            }
            guard !host.isEmpty else { return nil }
            self.host = String(host)
            self.port = port
            self.authority = String(authority)
        }
    }

    /// What came back: the response head, and the body when asked for.
    struct Response: Sendable {
        var head: HTTPResponseHead
        var body: [UInt8]?
    }

    private struct Key: Hashable {
        var host: String
        var port: Int
    }

    /// The idle connections by host, and how many there are in all.
    private struct Idle {
        var byHost: [Key: [any Channel]] = [:]
        var count = 0
    }

    private let group: any EventLoopGroup
    private let idle = Mutex(Idle())
    /// Idle connections kept per host; a connection coming back to a full host is closed.
    private let maximumIdlePerHost: Int
    /// Idle connections kept in all, so that polling many hosts does not hold a socket open per host.
    private let maximumIdle: Int
    /// An idle connection is closed after this long: servers drop idle connections (nginx after 75 s), and
    /// a poll should not be the one to find out.
    private let idleTimeout: TimeAmount

    init(group: any EventLoopGroup, maximumIdlePerHost: Int, maximumIdle: Int, idleTimeout: TimeAmount) {
        self.group = group
        self.maximumIdlePerHost = maximumIdlePerHost
        self.maximumIdle = maximumIdle
        self.idleTimeout = idleTimeout
    }

    deinit {
        self.shutdown()
    }

    /// Closes the idle connections.
    func shutdown() {
        let all = self.idle.withLock { idle in
            defer { idle = Idle() }
            return idle.byHost.values.flatMap { $0 }
        }
        for channel in all { channel.close(promise: nil) }
    }

    /// The number of idle connections kept.
    var idleCount: Int { self.idle.withLock { $0.count } }

    /// Sends one request and waits for its response, all before `deadline`.
    ///
    /// A kept-alive connection the server has closed meanwhile fails before a byte of response arrives; an
    /// idempotent request is then sent once more on a new connection, as browsers and HTTP clients do.
    func execute(
        _ endpoint: Endpoint, method: HTTPMethod, headers: HTTPHeaders, deadline: NIODeadline,
        captureBody: Bool, maximumBodySize: Int
    ) async throws -> Response {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: endpoint.path, headers: headers)
        head.headers.add(name: "Host", value: endpoint.authority)
        let key = Key(host: endpoint.host, port: endpoint.port)
        if let channel = self.takeIdle(key) {
            do {
                return try await self.send(
                    head, on: channel, key: key, deadline: deadline, captureBody: captureBody,
                    maximumBodySize: maximumBodySize)
            } catch is StaleConnection where Self.isIdempotent(method) {
                // The server closed it while it was idle: go again on a new connection.
            } catch is StaleConnection {
                throw Self.closedBeforeResponse
            }
        }
        let channel = try await self.connect(key, deadline: deadline)
        do {
            return try await self.send(
                head, on: channel, key: key, deadline: deadline, captureBody: captureBody,
                maximumBodySize: maximumBodySize)
        } catch is StaleConnection {
            throw Self.closedBeforeResponse
        }
    }

    static let closedBeforeResponse = ProbeFailure(
        .reset, detail: "the server closed the connection before a response")

    /// Whether a request is safe to send twice (RFC 9110 §9.2.2), so a dropped connection may be retried.
    private static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: true
        default: false
        }
    }

    private func send(
        _ head: HTTPRequestHead, on channel: any Channel, key: Key, deadline: NIODeadline, captureBody: Bool,
        maximumBodySize: Int
    ) async throws -> Response {
        let promise = channel.eventLoop.makePromise(of: Exchange.Outcome.self)
        let exchange = Exchange(
            head: head, deadline: deadline, captureBody: captureBody, maximumBodySize: maximumBodySize,
            promise: promise)
        // Cancelled (the engine is stopping): close the connection, which ends the exchange at once.
        // A write that never reaches the handler (the connection closed first) ends the exchange too.
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in promise.fail(StaleConnection()) }
        let outcome = try await withTaskCancellationHandler {
            channel.writeAndFlush(exchange, promise: written)
            return try await promise.futureResult.get()
        } onCancel: {
            channel.close(promise: nil)
        }
        if outcome.reusable { self.putIdle(channel, key) }
        return outcome.response
    }

    private func connect(_ key: Key, deadline: NIODeadline) async throws -> any Channel {
        let remaining = deadline - .now()
        guard remaining > .zero else { throw ProbeFailure(.timeout, detail: "") }
        let loop = self.group.next()
        let idleTimeout = self.idleTimeout
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(remaining)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler())
                }
            }
            .connect(host: key.host, port: key.port)
            .map { channel in
                // A connection that closes while idle (the server's doing, or its idle timeout) leaves the pool.
                channel.closeFuture.whenComplete { [weak self] _ in self?.forget(channel, key) }
                return channel
            }
        // Cancelled while connecting: give up at once, and close the connection if it is made later.
        let waiter = Mutex<(continuation: CheckedContinuation<any Channel, any Error>?, cancelled: Bool)>(
            (nil, false))
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let cancelled = waiter.withLock { waiter in
                    if !waiter.cancelled { waiter.continuation = continuation }
                    return waiter.cancelled
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
                connected.whenComplete { outcome in
                    let taken = waiter.withLock { waiter in
                        defer { waiter.continuation = nil }
                        return waiter.continuation
                    }
                    guard let taken else {
                        if case .success(let channel) = outcome { channel.close(promise: nil) }
                        return
                    }
                    taken.resume(with: outcome)
                }
            }
        } onCancel: {
            let taken = waiter.withLock { waiter in
                defer { waiter = (nil, true) }
                return waiter.continuation
            }
            taken?.resume(throwing: CancellationError())
        }
    }

    private func takeIdle(_ key: Key) -> (any Channel)? {
        var closed: [any Channel] = []
        let channel: (any Channel)? = self.idle.withLock { idle in
            while let last = idle.byHost[key]?.popLast() {
                idle.count -= 1
                if idle.byHost[key]!.isEmpty { idle.byHost[key] = nil }
                if last.isActive { return last }
                closed.append(last)
            }
            return nil
        }
        for channel in closed { channel.close(promise: nil) }
        return channel
    }

    private func putIdle(_ channel: any Channel, _ key: Key) {
        let kept = self.idle.withLock { idle in
            // Checked under the lock that `forget` takes: a connection that began closing before it got
            // here (its idle timeout can fire first) is not kept, and one that closes later is forgotten.
            guard channel.isActive, idle.count < self.maximumIdle,
                idle.byHost[key, default: []].count < self.maximumIdlePerHost
            else { return false }
            idle.byHost[key, default: []].append(channel)
            idle.count += 1
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    private func forget(_ channel: any Channel, _ key: Key) {
        self.idle.withLock { idle in
            guard let index = idle.byHost[key]?.firstIndex(where: { $0 === channel }) else { return }
            idle.byHost[key]!.remove(at: index)
            idle.count -= 1
            if idle.byHost[key]!.isEmpty { idle.byHost[key] = nil }
        }
    }
}

/// A reused connection that the server had closed: the request never reached it.
private struct StaleConnection: Error {}

/// Exchange is one request on its way to the handler, with the promise its outcome completes.
private struct Exchange: Sendable {
    struct Outcome: Sendable {
        var response: HTTP1Client.Response
        /// Whether the connection can carry another request.
        var reusable: Bool
    }

    var head: HTTPRequestHead
    var deadline: NIODeadline
    var captureBody: Bool
    var maximumBodySize: Int
    var promise: EventLoopPromise<Outcome>
}

/// ExchangeHandler runs one exchange at a time on its connection: writes the request, reads the response
/// (discarding the body beyond what is kept, and closing the connection once the cap is passed), and fails
/// the exchange if the deadline passes, the server closes, or the response is not HTTP.
private final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    private struct Current {
        var exchange: Exchange
        var timer: Scheduled<Void>?
        var head: HTTPResponseHead?
        var body: [UInt8]?
        var read = 0
    }

    private var current: Current?
    /// Whether the connection has carried a request before this one.
    private var used = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = self.unwrapOutboundIn(data)
        promise?.succeed()
        guard self.current == nil, context.channel.isActive else {
            exchange.promise.fail(StaleConnection())
            return
        }
        var current = Current(exchange: exchange)
        current.body = exchange.captureBody ? [] : nil
        let loop = context.eventLoop.assumeIsolated()
        current.timer = loop.scheduleTask(deadline: exchange.deadline) { [context] in
            self.finish(context, .failure(ProbeFailure(.timeout, detail: "")), close: true)
        }
        self.current = current
        context.write(self.wrapOutboundOut(.head(exchange.head)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.current != nil else { return }
        switch self.unwrapInboundIn(data) {
        case .head(let head):
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
                let outcome = Exchange.Outcome(
                    response: .init(head: head, body: self.current!.body), reusable: false)
                self.finish(context, .success(outcome), close: true)
            }
        case .end:
            guard let head = self.current!.head else { return }
            let outcome = Exchange.Outcome(
                response: .init(head: head, body: self.current!.body), reusable: head.isKeepAlive)
            self.finish(context, .success(outcome), close: !head.isKeepAlive)
        }
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
                error = StaleConnection()
            } else {
                error = HTTP1Client.closedBeforeResponse
            }
            self.finish(context, .failure(error), close: false)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let current = self.current, current.head == nil, self.used, let io = error as? IOError,
            io.errnoCode == ECONNRESET || io.errnoCode == EPIPE
        {
            self.finish(context, .failure(StaleConnection()), close: true)
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
