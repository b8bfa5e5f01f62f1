import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#endif

/// HTTPProber polls `http://` and `https://` URLs on ``HTTP1Client``, urlpoll's own HTTP/1.1 client on
/// SwiftNIO (with NIOSSL for `https://`).
///
/// **Why its own client, not AsyncHTTPClient.** A poll needs three things AsyncHTTPClient cannot give: it
/// reads responses as curl does (bare-LF lines, control bytes in header values; AsyncHTTPClient's parser
/// cannot be made lenient and it takes no extra channel handlers), it reports per-phase timings (resolve,
/// connect, tls, processing, transfer; AsyncHTTPClient exposes none, async-http-client issue #868), and it
/// reports the chain an `https://` server presented (`res.tls`, `cert_expiry`, a failed verification's
/// reason and subject from the one handshake; AsyncHTTPClient shows no peer certificate). It is faster too:
/// AsyncHTTPClient hops between its event loop and the caller several times per request, which capped
/// polling near 15,000 requests/s on two cores; the own client does about 2.5 times that (see README,
/// Performance). AsyncHTTPClient stays for webhooks and alerts (``makeClient(pollers:idleTimeout:followsRedirects:)``
/// with redirects on), and tests still send polls through it (``Configuration/usesPlainHTTPClient`` false)
/// to check that both put the same bytes on the wire (the `RecordingServer` tests compare the two).
///
/// **One request per hop.** Each URL's ``RequestDescription`` is worked out when the script is loaded; its
/// header list is sent in its order, with `Content-Length` framing, never chunked. The prober follows
/// redirects itself, one request per hop, as Go's net/http and curl `-L` do:
/// - at most 5 redirects, and a URL met twice is a loop (both fail as `redirect`);
/// - 303 turns any method but HEAD into a GET without a body; 301 and 302 turn a POST into a GET;
///   307 and 308 keep the method and the body (RFC 9110 §15.4);
/// - credentials (the URL's user info, and an `Authorization` or `Cookie` header) are dropped when a
///   redirect leaves the host and port, as net/http does;
/// - the URL's `timeout` bounds the whole poll, every hop included, and the latency is the whole poll's;
///   the phase timings are summed over the hops (``PhaseTimings``), as blackbox_exporter sums them.
///
/// **TLS.** An `https://` hop verifies the server's chain during the handshake (RFC 5280 to the system's
/// roots or `tls.ca_file`'s, the name per RFC 6125 against `tls.server_name` or the URL's host), unless
/// `tls.verify` is false; a chain that does not verify fails the poll as `tls` with the reason and the
/// certificate's subject, and the request (with any credentials) is never sent. `tls.server_name` applies to
/// hops on the URL's own host. With `tls.cert_expiry = N` a response whose chain expires within N days is
/// degraded, as a `tls://` URL is.
///
/// Connections are kept alive and reused between polls of the same scheme, host, port and TLS options
/// (warm timings, as Gatus measures), idle ones closed after ``Configuration/idleTimeout``; a failed
/// connection attempt is not retried within a poll. A response body is read and discarded, up to
/// ``Configuration/maximumBodySize``, within the URL's timeout; it is kept only for a `check` hook.
public struct HTTPProber: Prober {
    public struct Configuration: Sendable {
        /// The most body bytes read per response (default 1 MiB); the rest is not read.
        public var maximumBodySize = 1 << 20
        /// Sent with every request unless the URL sets its own (default `urlpoll/VERSION`).
        public var userAgent = "urlpoll/\(urlpollVersion)"
        /// The most idle connections kept open per host, http and https (default 64; `urlpoll` uses the
        /// number of pollers when larger). A connection coming back to a full host is closed.
        public var idleConnectionsPerHost = 64
        /// The most idle connections kept open in all (default 256), so that polling thousands of hosts
        /// does not hold a socket open for each; never more than a quarter of the file descriptors left
        /// for polls (``DescriptorBudget/idleConnections(wanted:)``).
        public var idleConnections = 256
        /// How long an idle connection is kept (default 50 s, under the 60–75 s after which common servers
        /// drop one), on both paths: ``HTTPProber/makeClient(pollers:idleTimeout:followsRedirects:)`` gives
        /// AsyncHTTPClient the same. URLs polled less often get a new connection each poll.
        public var idleTimeout: Duration = Self.defaultIdleTimeout
        /// Whether polls go on urlpoll's own client, ``HTTP1Client`` (default true, for `http://` and
        /// `https://`). Tests set it to false to send them through AsyncHTTPClient instead and compare the two
        /// paths; that path reads no `tls` options, fills no `res.tls` or timings, and reads responses
        /// strictly.
        public var usesPlainHTTPClient = true

        /// 50 s.
        public static let defaultIdleTimeout: Duration = .seconds(50)

        public init() {}
    }

    /// The most redirects followed in one poll, as Go's net/http (10) and curl (50) bound theirs; a sixth
    /// fails the poll as `redirect`.
    public static let maximumRedirects = 5

    private let client: HTTPClient
    private let configuration: Configuration
    /// urlpoll's own HTTP/1.1 client, for http and https.
    private let own: HTTP1Client

    /// - Parameter client: Its event loops run urlpoll's own client; tests may send polls through it instead
    ///   (make it with ``makeClient(pollers:idleTimeout:followsRedirects:)``, which turns its redirect
    ///   following off).
    public init(client: HTTPClient, configuration: Configuration = Configuration()) {
        self.client = client
        self.configuration = configuration
        // Idle connections hold descriptors too: never more than the share the descriptor budget leaves them.
        let idle = DescriptorBudget.current.idleConnections(wanted: configuration.idleConnections)
        self.own = HTTP1Client(
            group: client.eventLoopGroup, maximumIdlePerHost: min(configuration.idleConnectionsPerHost, idle),
            maximumIdle: idle,
            idleTimeout: .nanoseconds(Int64(configuration.idleTimeout.seconds * 1e9)))
    }

    /// The event loops of `client`, which urlpoll's own client's connections also use.
    public var eventLoops: (any EventLoopGroup)? { self.client.eventLoopGroup }

    /// Closes the idle connections of urlpoll's own client (AsyncHTTPClient's close when it shuts down).
    public func shutdown() {
        self.own.shutdown()
    }

    /// The idle connections of urlpoll's own client kept open.
    public var idleConnections: Int { self.own.idleCount }

    /// An HTTP client configured for polling: enough connections per host for `pollers` requests in flight,
    /// idle connections closed after `idleTimeout` (the prober's, 50 s by default), one connection attempt
    /// per request, and redirects not followed (the prober follows them itself, one request per hop) unless
    /// `followsRedirects` (for webhooks: 5 at most, loops detected). TLS 1.2 and 1.3 only (RFC 8996), as
    /// polls and hooks: a webhook receiver that speaks TLS 1.1 at most fails as `tls: protocol version`.
    public static func makeClient(
        pollers: Int, idleTimeout: Duration = Configuration.defaultIdleTimeout, followsRedirects: Bool = false
    ) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: followsRedirects ? .follow(max: 5, allowCycles: false) : .disallow,
            timeout: .init(connect: .seconds(30), read: nil))
        configuration.connectionPool = .init(
            idleTimeout: .nanoseconds(Int64(idleTimeout.seconds * 1e9)),
            concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, pollers))
        // One connection attempt per poll: a refused or unreachable server is reported at once as what it
        // is, instead of being retried until the timeout and reported late.
        configuration.connectionPool.retryConnectionEstablishment = false
        // TLS 1.2 and 1.3 only (RFC 8996), as polls and hooks; swift-nio-ssl's default minimum is TLS 1.0.
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        configuration.tlsConfiguration = tls
        configuration.httpVersion = .automatic
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// One hop's answer: its status line, headers and (kept) body, and what the exchange showed.
    struct HopResponse: Sendable {
        var code: Int
        var reason: String
        var headers: HTTPHeaders
        var body: [UInt8]?
        /// `1.1`, `1.0`, `2.0`.
        var version: Double
        var bodyLength: Int
        /// The hop's phases, or `nil` on AsyncHTTPClient (which does not expose them).
        var timings: PhaseTimings?
        var ipProtocol: Int?
        var tls: TLSFacts?
    }

    public func probe(_ target: Target, settings: Settings) async -> ProbeResult {
        let timeout = settings.timeout(for: target)
        let start = ContinuousClock.now
        guard var request = target.request else {
            return .failed(.badURL, "not an absolute http or https URL: \(target.displayURL)")
        }
        var method = settings.method(for: target)
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.seconds * 1e9))
        var visited: Set<String> = []
        var timings: PhaseTimings?
        do {
            for hop in 0...Self.maximumRedirects {
                visited.insert(method + " " + request.url)
                let response = try await self.send(
                    request, method: method, target: target, timeout: timeout, deadline: deadline)
                if let phases = response.timings {
                    if timings == nil { timings = PhaseTimings() }
                    timings!.add(phases)
                }
                guard [301, 302, 303, 307, 308].contains(response.code),
                    let location = response.headers.first(name: "Location")
                else {
                    return Self.result(
                        response, target: target, latency: ContinuousClock.now - start, redirects: hop,
                        timings: timings, ssl: request.scheme == "https")
                }
                guard hop < Self.maximumRedirects else {
                    throw ProbeFailure(.redirect, detail: "more than \(Self.maximumRedirects) redirects")
                }
                guard
                    let next = Self.redirect(request, method: &method, code: response.code, location: location, target)
                else {
                    throw ProbeFailure(
                        .redirect,
                        detail: "a redirect to a URL that cannot be followed (not http or https, or a port out of "
                            + "1–65535): \(RequestDescription.redacting(location))")
                }
                guard !visited.contains(method + " " + next.url) else {
                    throw ProbeFailure(.redirect, detail: "redirect loop (back to \(next.url))")
                }
                request = next
            }
            throw ProbeFailure(.redirect, detail: "more than \(Self.maximumRedirects) redirects")
        } catch let error as HTTP1Client.HandshakeFailure {
            // The chain did not verify (or the handshake failed): its facts still go to `res.tls`.
            return ProbeResult(.failure(error.failure), latency: ContinuousClock.now - start, tls: error.tls)
        } catch {
            let failure = Self.classify(error, timeout: timeout)
            // Out of descriptors: idle kept-alive connections hold some; closing them frees them for the retry.
            if failure.isLocal { self.own.shutdown() }
            return ProbeResult(.failure(failure), latency: ContinuousClock.now - start)
        }
    }

    /// The poll's result from its last hop's `response`: the status, the kept headers and body, the TLS
    /// facts (and `cert_expiry`'s judgement of them), the phases summed over the hops, and the exchange's
    /// facts.
    static func result(
        _ response: HopResponse, target: Target, latency: Duration, redirects: Int, timings: PhaseTimings?,
        ssl: Bool
    ) -> ProbeResult {
        let headers = target.captureHeaders ? response.headers.map { Header($0.name, $0.value) } : []
        var result = ProbeResult(
            .response(code: response.code, reason: response.reason), latency: latency, headers: headers,
            body: response.body, tls: response.tls)
        result.timings = timings
        result.http = HTTPFacts(
            version: response.version,
            contentLength: response.headers.first(name: "Content-Length").flatMap { Int($0) },
            bodyLength: response.bodyLength, redirects: redirects, ssl: ssl, ipProtocol: response.ipProtocol)
        if let facts = response.tls, let days = target.tls?.certExpiryDays,
            let words = CertificateCheck.expiryWarning(facts, days: days, now: Date())
        {
            result.warning = ProbeResult.Warning(error: "cert_expiry", detail: words)
        }
        return result
    }

    /// The request for the hop after a `code` redirect to `location`, with `method` changed as net/http and
    /// curl change it; nil when `location` is not an http or https URL.
    static func redirect(
        _ request: RequestDescription, method: inout String, code: Int, location: String, _ target: Target
    ) -> RequestDescription? {
        guard let base = URL(string: request.url), let resolved = URL(string: location, relativeTo: base),
            var next = RequestDescription(url: resolved.absoluteString, headers: [], body: request.body)
        else { return nil }
        var scriptHeaders = target.headers
        if next.scheme == request.scheme, next.host == request.host, next.port == request.port {
            // Same origin: the credentials go on (the new URL's own, or the first's).
            if next.credentials == nil { next.credentials = request.credentials }
        } else {
            // Another host: no credentials, as net/http's shouldCopyHeaderOnRedirect.
            next.credentials = nil
            let sensitive: Set<String> = ["authorization", "www-authenticate", "cookie", "cookie2", "host"]
            scriptHeaders.removeAll { sensitive.contains($0.name.lowercased()) }
        }
        switch code {
        case 303 where method != "HEAD", 301 where method == "POST", 302 where method == "POST":
            method = "GET"
            next.body = nil
        default:
            break
        }
        next.setHeaders(scriptHeaders)
        return next
    }

    /// Sends one hop's request on the path its scheme needs.
    private func send(
        _ request: RequestDescription, method: String, target: Target, timeout: Duration, deadline: NIODeadline
    ) async throws -> HopResponse {
        let fields = request.fields(method: method, userAgent: self.configuration.userAgent)
        if self.configuration.usesPlainHTTPClient {
            var tls: TLSOptions?
            if request.scheme == "https" {
                var options = target.tls ?? TLSOptions()
                // The URL's `server_name` is for its own host; a redirect elsewhere is checked by its own name.
                if options.serverName == nil || request.host != target.request?.host {
                    options.serverName = request.host
                }
                // Not part of the connection: it judges the facts, per poll.
                options.certExpiryDays = nil
                tls = options
            }
            let response = try await self.own.execute(
                request, method: HTTPMethod(rawValue: method), fields: fields, tls: tls, deadline: deadline,
                captureBody: target.captureBody, maximumBodySize: self.configuration.maximumBodySize)
            let version = response.head.version
            return HopResponse(
                code: Int(response.head.status.code), reason: response.head.status.reasonPhrase,
                headers: response.head.headers, body: response.body,
                version: Double(version.major) + Double(version.minor) / 10, bodyLength: response.bodyLength,
                timings: response.timings, ipProtocol: response.ipProtocol, tls: response.tls)
        }
        var prepared = HTTPClientRequest(url: request.url)
        prepared.method = HTTPMethod(rawValue: method)
        prepared.headers = HTTPHeaders(fields.map { ($0.name, $0.value) })
        if let body = request.body { prepared.body = .bytes(ByteBuffer(bytes: body)) }
        let sendRequest = prepared
        let captureBody = target.captureBody
        let maximumBodySize = self.configuration.maximumBodySize
        do {
            return try await self.sendWithAsyncHTTPClient(
                sendRequest, method: method, captureBody: captureBody, maximumBodySize: maximumBodySize,
                deadline: deadline)
        } catch let error
            where Self.mayBeAStaleConnection(error) && HTTP1Client.isIdempotent(HTTPMethod(rawValue: method))
        {
            // AsyncHTTPClient may have read stray bytes left on a kept-alive connection by an earlier
            // response (a body after a HEAD response), or sent on a connection that was closing for that
            // reason: it has dropped that connection, so an idempotent request goes once more, as urlpoll's
            // own client does; a server that is really not HTTP fails again.
            return try await self.sendWithAsyncHTTPClient(
                sendRequest, method: method, captureBody: captureBody, maximumBodySize: maximumBodySize,
                deadline: deadline)
        }
    }

    /// Whether an AsyncHTTPClient failure can come from a kept-alive connection that could not carry the
    /// request (stray bytes read as a response; the connection closed under the request).
    private static func mayBeAStaleConnection(_ error: any Error) -> Bool {
        if error is HTTPParserError { return true }
        if let error = error as? ChannelError, case .ioOnClosedChannel = error { return true }
        if let error = error as? HTTPClientError, error == .remoteConnectionClosed { return true }
        return false
    }

    private func sendWithAsyncHTTPClient(
        _ sendRequest: HTTPClientRequest, method: String, captureBody: Bool, maximumBodySize: Int,
        deadline: NIODeadline
    ) async throws -> HopResponse {
        let remaining = deadline - .now()
        return try await self.withDeadline(.nanoseconds(max(0, remaining.nanoseconds)), wanted: method != "HEAD") {
            let response = try await self.client.execute(sendRequest, deadline: deadline)
            var body: [UInt8]? = captureBody ? [] : nil
            var left = maximumBodySize
            var read = 0
            // A response to HEAD has no body: the exchange is over with the head, so skip the hop.
            let bodyless = method == "HEAD" || response.status.code == 204 || response.status.code == 304
            if !bodyless {
                for try await chunk in response.body {
                    if captureBody {
                        body?.append(contentsOf: chunk.readableBytesView.prefix(left))
                    }
                    left -= chunk.readableBytes
                    read += chunk.readableBytes
                    if left <= 0 { break }
                }
            }
            return HopResponse(
                code: Int(response.status.code), reason: response.status.reasonPhrase, headers: response.headers,
                body: body, version: Double(response.version.major) + Double(response.version.minor) / 10,
                bodyLength: min(read, maximumBodySize))
        }
    }

    /// Runs `work` within `timeout`. AsyncHTTPClient's deadline covers the request up to the response head;
    /// when a body is read, a timer bounds the rest, so a server that trickles its body cannot hold a poller.
    private func withDeadline<T: Sendable>(
        _ timeout: Duration, wanted: Bool, _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard wanted else { return try await work() }
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await work() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw HTTPClientError.deadlineExceeded
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// Maps a client error to a short kind; the full text goes in `detail`.
    static func classify(_ error: any Error, timeout: Duration) -> ProbeFailure {
        if let failure = error as? ProbeFailure {
            guard failure.kind == .timeout, failure.detail.isEmpty else { return failure }
            return ProbeFailure(.timeout, detail: "no response within \(formatSeconds(timeout.seconds)) s")
        }
        let detail = String(describing: error)
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .connectTimeout, .getConnectionFromPoolTimeout,
                .tlsHandshakeTimeout:
                return ProbeFailure(.timeout, detail: "no response within \(formatSeconds(timeout.seconds)) s")
            case .remoteConnectionClosed:
                return ProbeFailure(.reset, detail: "the server closed the connection before a complete response")
            case .redirectCycleDetected:
                return ProbeFailure(.redirect, detail: "redirect loop")
            case .redirectLimitReached:
                return ProbeFailure(.redirect, detail: "more than 5 redirects")
            case .invalidURL, .emptyHost, .emptyScheme:
                return ProbeFailure(.badURL, detail: detail)
            default:
                break
            }
            if detail.contains("unsupportedScheme") { return ProbeFailure(.badURL, detail: detail) }
        }
        if let error = error as? NIOConnectionError {
            if error.connectionErrors.isEmpty, error.dnsAError != nil || error.dnsAAAAError != nil {
                return ProbeFailure(.dns, detail: detail)
            }
            if let first = error.connectionErrors.first?.error {
                return Self.classify(first, timeout: timeout)
            }
        }
        if let error = error as? IOError {
            if let local = ProbeFailure.local(errno: error.errnoCode) { return local }
            // In words, with the errno's name: NIO's own description of an IOError reads "connection reset
            // (error set): Connection refused (errno: 111)", whatever the error was.
            let code = error.errnoCode
            let words = "\(String(cString: strerror(code))) (errno \(code))"
            switch code {
            case ECONNREFUSED: return ProbeFailure(.refused, detail: "the server refused the connection: " + words)
            case ECONNRESET, EPIPE:
                return ProbeFailure(.reset, detail: "the connection was reset: " + words)
            case ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL:
                return ProbeFailure(.unreachable, detail: "no route to the server: " + words)
            case ETIMEDOUT: return ProbeFailure(.timeout, detail: "the connection timed out: " + words)
            default: return ProbeFailure(.error, detail: words)
            }
        }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return ProbeFailure(.timeout, detail: "could not connect within the timeout")
        }
        if let error = error as? HTTPParserError {
            // A body cut short by the server closing is a reset, not a malformed response.
            if case .invalidEOFState = error {
                return ProbeFailure(.reset, detail: "the server closed the connection before the end of the body")
            }
            return ProbeFailure(.badResponse, detail: error.words)
        }
        if error is SocketAddressError { return ProbeFailure(.dns, detail: detail) }
        // TLS: BoringSSL's reason in words, never its dump (which holds a build path).
        if let failure = TLSFailureWords.failure(error) { return failure }
        let type = String(reflecting: type(of: error))
        if type.contains("SSL") || type.contains("TLS") { return ProbeFailure(.tls, detail: "TLS handshake failed") }
        if type.contains("DNS") || type.contains("Resolution") { return ProbeFailure(.dns, detail: detail) }
        return ProbeFailure(.error, detail: detail)
    }
}
