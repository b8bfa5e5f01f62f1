import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// HTTP1Client is the prober's HTTP/1.1 client, for `http://` and `https://` URLs alike: one request at a
/// time on a kept-alive connection, the whole exchange (write, read, deadline) run by one channel handler on
/// the connection's event loop, and idle connections kept per scheme, host, port and TLS options for the
/// next poll.
///
/// It is urlpoll's own rather than AsyncHTTPClient because a poll needs what that client cannot give:
/// - **lenient reading**, as curl reads: a bare-LF head or chunk framing, control bytes in header values
///   (``ResponseHeadNormalizer`` in front of the decoder; AsyncHTTPClient takes no extra channel handlers and
///   its parser cannot be made lenient);
/// - **per-phase timings** (resolve, connect, TLS, processing, transfer: ``PhaseTimings``), which
///   AsyncHTTPClient does not expose (async-http-client issue #868);
/// - **the chain the server presented**, for `res.tls` and a failed verification's reason in words, from the
///   one handshake (AsyncHTTPClient shows no peer certificate);
/// - and speed: AsyncHTTPClient hops between its event loop and the caller several times per request.
///
/// On `https://` an `NIOSSLClientHandler` comes first in the pipeline, with the name from `tls.server_name`
/// or the URL's host as SNI (none for an IP address, RFC 6066 §3); its verification callback
/// (``PresentedChain``) verifies the chain with swift-certificates unless `tls.verify` is false, and the
/// request is written only once the handshake is done. It does what a poll needs and nothing else: HTTP/1.1
/// only (ALPN `http/1.1`), one request per call (``HTTPProber`` follows redirects).
final class HTTP1Client: Sendable {
    /// What came back: the response head, the body when asked for, and what the exchange showed.
    struct Response: Sendable {
        var head: HTTPResponseHead
        var body: [UInt8]?
        /// Body bytes read (all of them, kept or not, up to the cap).
        var bodyLength = 0
        /// This exchange's phases: resolve, connect and tls only when it opened its connection.
        var timings = PhaseTimings()
        /// 4 or 6: the connection's IP version.
        var ipProtocol: Int?
        /// The connection's TLS facts, on `https://`.
        var tls: TLSFacts?
    }

    /// A failed TLS handshake, with the facts of the chain the server presented when it presented one.
    struct HandshakeFailure: Error {
        var failure: ProbeFailure
        var tls: TLSFacts?
    }

    private let group: any EventLoopGroup
    private let idle: IdleConnectionPool
    private let resolver: NameResolver
    /// The TLS context of every `https://` connection (TLS 1.2 and 1.3, ALPN `http/1.1`); verification is
    /// ``PresentedChain``'s. `nil` only if BoringSSL could not make one.
    private let tlsContext: NIOSSLContext?
    /// An idle connection is closed after this long: servers drop idle connections (nginx after 75 s), and
    /// a poll should not be the one to find out.
    private let idleTimeout: TimeAmount
    /// Run between taking a kept connection from the pool and writing the request on it. Tests only (`nil`
    /// in urlpoll): a test makes the connection stale here, on a server's cue, to hit that window for sure.
    private let handingOut: (@Sendable (any Channel) async -> Void)?

    init(
        group: any EventLoopGroup, maximumIdlePerHost: Int, maximumIdle: Int, idleTimeout: TimeAmount,
        resolver: NameResolver = .shared, handingOut: (@Sendable (any Channel) async -> Void)? = nil
    ) {
        self.handingOut = handingOut
        self.group = group
        self.idle = IdleConnectionPool(maximumPerHost: maximumIdlePerHost, maximum: maximumIdle)
        self.idleTimeout = idleTimeout
        self.resolver = resolver
        var configuration = TLSConfiguration.makeClientConfiguration()
        // TLS 1.2 and 1.3 only: 1.0 and 1.1 are deprecated (RFC 8996), and Go's net/http (the seed's client)
        // and curl refuse them too. swift-nio-ssl's default minimum is TLS 1.0.
        configuration.minimumTLSVersion = .tlsv12
        // The verification callback replaces BoringSSL's checks (chain and name alike).
        configuration.certificateVerification = .noHostnameVerification
        configuration.applicationProtocols = ["http/1.1"]
        self.tlsContext = try? NIOSSLContext(configuration: configuration)
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

    /// Sends one request and waits for its response, all before `deadline`: over TLS when `tls` is given
    /// (its `serverName` already worked out: `tls.server_name` or the URL's host).
    ///
    /// `fields` are sent as given, in order (``RequestDescription/fields(method:userAgent:)``: `Host` first,
    /// the framing last), and the request's body after them.
    ///
    /// A kept-alive connection can turn out stale: the server closed it while it sat idle, or it held stray
    /// bytes (urlpoll then closes it), found when it is handed out, as the request is written, or before a
    /// byte of response arrives. An idempotent request (RFC 9110 §9.2.2) then goes once more, on a new
    /// connection. A request that is not idempotent (POST, PATCH, …) is never given a kept connection: once
    /// written it cannot be sent again, and whether a kept connection is still good is only known after the
    /// write (a server's idle close, or a HEAD response's announced body arriving late, can cross it). It
    /// always goes on a new connection, which is kept for the requests after it. A cancelled poll (the
    /// engine stopping) is never sent again and never opens a connection: it throws `CancellationError`. A
    /// TLS handshake that fails throws ``HandshakeFailure``; the request is not sent.
    func execute(
        _ request: RequestDescription, method: HTTPMethod, fields: [Header], tls: TLSOptions?, deadline: NIODeadline,
        captureBody: Bool, maximumBodySize: Int
    ) async throws -> Response {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count)
        for field in fields { headers.add(name: field.name, value: field.value) }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: request.target, headers: headers)
        let body = request.body
        let key = ConnectionKey(scheme: request.scheme, host: request.host, port: request.port, tls: tls)
        if Self.isIdempotent(method), let channel = self.idle.take(key) {
            if let handingOut = self.handingOut { await handingOut(channel) }
            do {
                return try await self.send(
                    head, body: body, on: channel, opened: nil, key: key, deadline: deadline, captureBody: captureBody,
                    maximumBodySize: maximumBodySize)
            } catch is StaleConnection where Task.isCancelled {
                // Closed by the cancellation itself (shutdown): not a stale connection, so no new one.
                throw CancellationError()
            } catch is StaleConnection {
                // The server closed it while it was idle, or it held another response's stray bytes: the
                // request is idempotent, so it goes again on a new connection.
            }
        }
        try Task.checkCancellation()
        let (channel, opened, phases) = try await self.connect(key, deadline: deadline)
        do {
            var response = try await self.send(
                head, body: body, on: channel, opened: opened, key: key, deadline: deadline, captureBody: captureBody,
                maximumBodySize: maximumBodySize)
            response.timings.resolve = phases.resolve
            response.timings.connect = phases.connect
            response.timings.tls = phases.tls
            return response
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
        _ head: HTTPRequestHead, body: [UInt8]?, on channel: any Channel, opened: ConnectionFacts?,
        key: ConnectionKey, deadline: NIODeadline, captureBody: Bool, maximumBodySize: Int
    ) async throws -> Response {
        let promise = channel.eventLoop.makePromise(of: Exchange.Outcome.self)
        let exchange = Exchange(
            head: head, body: body, deadline: deadline, captureBody: captureBody, maximumBodySize: maximumBodySize,
            opened: opened, promise: promise)
        // Cancelled (the engine is stopping): close the connection, which ends the exchange at once.
        // A write that never reaches the handler (the connection closed first) ends the exchange too.
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in promise.fail(StaleConnection(unsent: true)) }
        let outcome = try await withTaskCancellationHandler {
            channel.writeAndFlush(exchange, promise: written)
            return try await promise.futureResult.get()
        } onCancel: {
            channel.close(promise: nil)
        }
        if outcome.reusable { self.idle.put(channel, key) }
        return outcome.response
    }

    /// Opens a connection for `key`: the host resolved on ``NameResolver`` (off the event loops, within the
    /// deadline), the TCP connection, and on `https://` the TLS handshake, each phase timed.
    private func connect(_ key: ConnectionKey, deadline: NIODeadline) async throws -> (
        any Channel, ConnectionFacts, PhaseTimings
    ) {
        var phases = PhaseTimings()
        // The caller's loop when it runs on one of the group's (a poll on its poller's loop): the exchange
        // then needs no hop to another thread.
        let loop = self.group.any()
        var mark = NIODeadline.now()
        // Each phase: from the end of the one before it to now.
        func lap() -> Duration {
            let now = NIODeadline.now()
            defer { mark = now }
            return .nanoseconds((now - mark).nanoseconds)
        }
        let addresses: [SocketAddress]
        if let literal = try? SocketAddress(ipAddress: key.host, port: key.port) {
            // No lookup: no resolve phase.
            addresses = [literal]
        } else {
            switch await self.resolver.resolveAll(key.host, port: key.port, deadline: deadline, on: loop) {
            case .success(let resolved): addresses = resolved
            case .failure(let failure): throw failure
            }
            phases.resolve = lap()
        }
        try Task.checkCancellation()
        var facts = ConnectionFacts()
        var presented: PresentedChain?
        var sslContext: NIOSSLContext?
        if let tls = key.tls {
            guard let context = self.tlsContext else {
                throw ProbeFailure(.tls, detail: "urlpoll could not set up TLS (BoringSSL made no client context)")
            }
            sslContext = context
            presented = PresentedChain(serverName: tls.serverName ?? key.host, roots: tls.roots, verifies: tls.verify)
        }
        let handshake = presented.map { _ in loop.makePromise(of: TLSVersion?.self) }
        let channel = try await self.open(
            addresses, on: loop, deadline: deadline,
            initialize: { [presented, sslContext] channel in
                guard let presented, let sslContext, let handshake else { return }
                // TLS first; the handshake handler leaves once the handshake is done.
                try channel.pipeline.syncOperations.addHandler(try presented.handler(context: sslContext))
                try channel.pipeline.syncOperations.addHandler(
                    HandshakeHandler(promise: handshake, leavesAfterHandshake: true))
            }, key: key)
        phases.connect = lap()
        switch channel.remoteAddress?.protocol {
        case .inet: facts.ipProtocol = 4
        case .inet6: facts.ipProtocol = 6
        default: break
        }
        guard let presented, let handshake else { return (channel, facts, phases) }
        let timer = loop.scheduleTask(deadline: deadline) { handshake.fail(ProbeFailure(.timeout, detail: "")) }
        do {
            let version = try await withTaskCancellationHandler {
                try await handshake.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
            timer.cancel()
            phases.tls = lap()
            facts.tls = presented.facts(version: TLSProber.name(version))
            return (channel, facts, phases)
        } catch {
            timer.cancel()
            channel.close(promise: nil)
            if Task.isCancelled { throw CancellationError() }
            if let failure = error as? ProbeFailure, failure.kind == .timeout { throw failure }
            throw HandshakeFailure(
                failure: presented.failure(error, timeout: .nanoseconds((deadline - mark).nanoseconds)),
                tls: presented.facts(version: TLSProber.name(nil)))
        }
    }

    /// The TCP connection to one of `addresses` (several: IPv6 and IPv4 raced by SwiftNIO's Happy Eyeballs,
    /// RFC 8305, as it races its own lookup's), its pipeline set up (`initialize` first: TLS, on `https://`),
    /// within `deadline`; a cancelled poll gives up at once and closes the connection if it is made later.
    private func open(
        _ addresses: [SocketAddress], on loop: any EventLoop, deadline: NIODeadline,
        initialize: @escaping @Sendable (any Channel) throws -> Void, key: ConnectionKey
    ) async throws -> any Channel {
        let remaining = deadline - .now()
        guard remaining > .zero else { throw ProbeFailure(.timeout, detail: "") }
        let idleTimeout = self.idleTimeout
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(remaining)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try initialize(channel)
                    // In front of the decoder (behind TLS): bare-LF heads and chunk framing, and control bytes
                    // in header values, read as curl reads them.
                    try channel.pipeline.syncOperations.addHandler(ResponseHeadNormalizer())
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler())
                }
            }
        let connecting =
            addresses.count == 1
            ? bootstrap.connect(to: addresses[0])
            : bootstrap.resolver(PreResolved(addresses: addresses, loop: loop)).connect(
                host: key.host, port: key.port)
        let connected =
            connecting
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
