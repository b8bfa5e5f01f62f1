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
/// It does what a poll needs and nothing else: no TLS, one request per call (``HTTPProber`` follows
/// redirects, and sends `https://` hops through AsyncHTTPClient).
final class HTTP1Client: Sendable {
    /// What came back: the response head, and the body when asked for.
    struct Response: Sendable {
        var head: HTTPResponseHead
        var body: [UInt8]?
    }

    private let group: any EventLoopGroup
    private let idle: IdleConnectionPool
    /// An idle connection is closed after this long: servers drop idle connections (nginx after 75 s), and
    /// a poll should not be the one to find out.
    private let idleTimeout: TimeAmount

    init(group: any EventLoopGroup, maximumIdlePerHost: Int, maximumIdle: Int, idleTimeout: TimeAmount) {
        self.group = group
        self.idle = IdleConnectionPool(maximumPerHost: maximumIdlePerHost, maximum: maximumIdle)
        self.idleTimeout = idleTimeout
    }

    deinit {
        self.shutdown()
    }

    /// Closes the idle connections.
    func shutdown() {
        self.idle.closeAll()
    }

    /// The number of idle connections kept.
    var idleCount: Int { self.idle.count }

    /// Sends one request and waits for its response, all before `deadline`.
    ///
    /// `fields` are sent as given, in order (``RequestDescription/fields(method:userAgent:)``: `Host` first,
    /// the framing last), and the request's body after them. A kept-alive connection the server has closed
    /// meanwhile fails before a byte of response arrives; an idempotent request is then sent once more on a
    /// new connection, as browsers and HTTP clients do. A cancelled poll (the engine stopping) is never
    /// sent again and never opens a connection: it throws `CancellationError`.
    func execute(
        _ request: RequestDescription, method: HTTPMethod, fields: [Header], deadline: NIODeadline,
        captureBody: Bool, maximumBodySize: Int
    ) async throws -> Response {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count)
        for field in fields { headers.add(name: field.name, value: field.value) }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: request.target, headers: headers)
        let body = request.body
        let key = ConnectionKey(host: request.host, port: request.port)
        if let channel = self.idle.take(key) {
            do {
                return try await self.send(
                    head, body: body, on: channel, key: key, deadline: deadline, captureBody: captureBody,
                    maximumBodySize: maximumBodySize)
            } catch is StaleConnection where Task.isCancelled {
                // Closed by the cancellation itself (shutdown): not a stale connection, so no new one.
                throw CancellationError()
            } catch is StaleConnection where Self.isIdempotent(method) {
                // The server closed it while it was idle, or it held another response's stray bytes: go
                // again on a new connection.
            } catch let stale as StaleConnection {
                if stale.strayBytes {
                    throw ProbeFailure(
                        .badResponse,
                        detail: "the kept-alive connection held bytes left over from an earlier response; "
                            + "\(method.rawValue) is not sent twice")
                }
                throw Self.closedBeforeResponse
            }
        }
        try Task.checkCancellation()
        let channel = try await self.connect(key, deadline: deadline)
        do {
            return try await self.send(
                head, body: body, on: channel, key: key, deadline: deadline, captureBody: captureBody,
                maximumBodySize: maximumBodySize)
        } catch is StaleConnection {
            if Task.isCancelled { throw CancellationError() }
            throw Self.closedBeforeResponse
        }
    }

    static let closedBeforeResponse = ProbeFailure(
        .reset, detail: "the server closed the connection before a response")

    /// Whether a request is safe to send twice (RFC 9110 §9.2.2), so a dropped connection may be retried.
    static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: true
        default: false
        }
    }

    private func send(
        _ head: HTTPRequestHead, body: [UInt8]?, on channel: any Channel, key: ConnectionKey, deadline: NIODeadline,
        captureBody: Bool, maximumBodySize: Int
    ) async throws -> Response {
        let promise = channel.eventLoop.makePromise(of: Exchange.Outcome.self)
        let exchange = Exchange(
            head: head, body: body, deadline: deadline, captureBody: captureBody, maximumBodySize: maximumBodySize,
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
        if outcome.reusable { self.idle.put(channel, key) }
        return outcome.response
    }

    private func connect(_ key: ConnectionKey, deadline: NIODeadline) async throws -> any Channel {
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
                    // In front of the decoder: bare-LF heads and control bytes in header values read as curl
                    // reads them.
                    try channel.pipeline.syncOperations.addHandler(ResponseHeadNormalizer(), position: .first)
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler())
                }
            }
            .connect(host: key.host, port: key.port)
            .map { channel in
                // A connection that closes while idle (the server's doing, or its idle timeout) leaves the pool.
                channel.closeFuture.whenComplete { [weak self] _ in self?.idle.forget(channel, key) }
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
}
