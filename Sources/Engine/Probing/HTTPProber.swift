import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// HTTPProber polls URLs: plain `http://` URLs on ``HTTP1Client``, a lean HTTP/1.1 path on SwiftNIO, and
/// HTTPS URLs and every redirect with AsyncHTTPClient.
///
/// Connections are kept alive and reused between polls of the same host (warm timings, as Gatus measures),
/// a failed connection attempt is not retried within a poll, and redirects are followed up to 5 times with
/// loops detected. A response body is read and discarded, up to ``Configuration/maximumBodySize``, all
/// within the URL's timeout; it is kept only for a `check` hook.
///
/// The plain path exists for speed: AsyncHTTPClient hops between its event loop and the caller several
/// times per request, which capped polling near 15,000 requests/s on two cores; the plain path does about
/// 2.5 times that (see README, Performance).
public struct HTTPProber: Prober {
    public struct Configuration: Sendable {
        /// The most body bytes read per response (default 1 MiB); the rest is not read.
        public var maximumBodySize = 1 << 20
        /// Sent with every request unless the URL sets its own (default `urlpoll/VERSION`).
        public var userAgent = "urlpoll/\(urlpollVersion)"
        /// The most idle connections kept open per host for plain HTTP (default 64; `urlpoll` uses the
        /// number of pollers when larger). A connection coming back to a full host is closed.
        public var idleConnectionsPerHost = 64
        /// The most idle connections kept open in all (default 256), so that polling thousands of hosts
        /// does not hold a socket open for each; never more than a quarter of the file descriptors left
        /// for polls (``DescriptorBudget/idleConnections(wanted:)``).
        public var idleConnections = 256
        /// How long an idle connection is kept (default 50 s, under the 60–75 s after which common servers
        /// drop one). URLs polled less often get a new connection each poll.
        public var idleTimeout: Duration = .seconds(50)

        public init() {}
    }

    private let client: HTTPClient
    private let configuration: Configuration
    private let fast: HTTP1Client

    /// - Parameter client: Sends HTTPS requests and follows redirects; its event loops also run the plain
    ///   HTTP fast path.
    public init(client: HTTPClient, configuration: Configuration = Configuration()) {
        self.client = client
        self.configuration = configuration
        // Idle connections hold descriptors too: never more than the share the descriptor budget leaves them.
        let idle = DescriptorBudget.current.idleConnections(wanted: configuration.idleConnections)
        self.fast = HTTP1Client(
            group: client.eventLoopGroup, maximumIdlePerHost: min(configuration.idleConnectionsPerHost, idle),
            maximumIdle: idle,
            idleTimeout: .nanoseconds(Int64(configuration.idleTimeout.seconds * 1e9)))
    }

    /// Closes the idle connections of the plain HTTP path (AsyncHTTPClient's close when it shuts down).
    public func shutdown() {
        self.fast.shutdown()
    }

    /// The idle plain-HTTP connections kept open.
    public var idleConnections: Int { self.fast.idleCount }

    /// An HTTP client configured for polling: redirects followed (5 at most, loops detected), enough
    /// connections per host for `pollers` requests in flight.
    public static func makeClient(pollers: Int) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .follow(max: 5, allowCycles: false),
            timeout: .init(connect: .seconds(30), read: nil))
        configuration.connectionPool = .init(
            idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, pollers))
        // One connection attempt per poll: a refused or unreachable server is reported at once as what it
        // is, instead of being retried until the timeout and reported late.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .automatic
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func probe(_ target: Target, settings: Settings) async -> ProbeResult {
        let timeout = settings.timeout(for: target)
        let method = settings.method(for: target)
        if let endpoint = HTTP1Client.Endpoint(target.url),
            let result = await self.probeFast(endpoint, target, method: method, timeout: timeout)
        {
            return result
        }
        var request = HTTPClientRequest(url: target.url)
        request.method = HTTPMethod(rawValue: method)
        request.headers = self.requestHeaders(for: target)
        let prepared = request
        let captureHeaders = target.captureHeaders
        let captureBody = target.captureBody
        let maximumBodySize = self.configuration.maximumBodySize
        let start = ContinuousClock.now
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.seconds * 1e9))
        do {
            let result = try await self.withDeadline(timeout, wanted: method != "HEAD") {
                let response = try await self.client.execute(prepared, deadline: deadline)
                var body: [UInt8]? = captureBody ? [] : nil
                var remaining = maximumBodySize
                // A response to HEAD has no body: the exchange is over with the head, so skip the hop.
                let bodyless = method == "HEAD" || response.status.code == 204 || response.status.code == 304
                if !bodyless {
                    for try await chunk in response.body {
                        if captureBody {
                            body?.append(contentsOf: chunk.readableBytesView.prefix(remaining))
                        }
                        remaining -= chunk.readableBytes
                        if remaining <= 0 { break }
                    }
                }
                let headers = captureHeaders ? response.headers.map { Header($0.name, $0.value) } : []
                return ProbeResult(
                    .response(code: Int(response.status.code), reason: response.status.reasonPhrase),
                    headers: headers, body: body)
            }
            var timed = result
            timed.latency = ContinuousClock.now - start
            return timed
        } catch {
            let failure = Self.classify(error, timeout: timeout)
            return ProbeResult(.failure(failure), latency: ContinuousClock.now - start)
        }
    }

    /// The URL's own headers, after a `User-Agent` unless it sets one.
    private func requestHeaders(for target: Target) -> HTTPHeaders {
        var headers = HTTPHeaders()
        if !target.headers.contains(where: { $0.name.lowercased() == "user-agent" }) {
            headers.add(name: "User-Agent", value: self.configuration.userAgent)
        }
        for header in target.headers {
            headers.add(name: header.name, value: header.value)
        }
        return headers
    }

    /// Polls a plain `http://` URL on the fast path. Returns nil for a redirect, which AsyncHTTPClient then
    /// follows from the start.
    private func probeFast(_ endpoint: HTTP1Client.Endpoint, _ target: Target, method: String, timeout: Duration)
        async -> ProbeResult?
    {
        let headers = self.requestHeaders(for: target)
        let start = ContinuousClock.now
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.seconds * 1e9))
        do {
            let response = try await self.fast.execute(
                endpoint, method: HTTPMethod(rawValue: method), headers: headers, deadline: deadline,
                captureBody: target.captureBody, maximumBodySize: self.configuration.maximumBodySize)
            let code = Int(response.head.status.code)
            if (300...399).contains(code), code != 304, response.head.headers.contains(name: "Location") {
                return nil
            }
            return ProbeResult(
                .response(code: code, reason: response.head.status.reasonPhrase),
                latency: ContinuousClock.now - start,
                headers: target.captureHeaders ? response.head.headers.map { Header($0.name, $0.value) } : [],
                body: response.body)
        } catch {
            return ProbeResult(.failure(Self.classify(error, timeout: timeout)), latency: ContinuousClock.now - start)
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
            switch error.errnoCode {
            case ECONNREFUSED: return ProbeFailure(.refused, detail: detail)
            case ECONNRESET, EPIPE: return ProbeFailure(.reset, detail: detail)
            case ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL: return ProbeFailure(.unreachable, detail: detail)
            case ETIMEDOUT: return ProbeFailure(.timeout, detail: detail)
            default: return ProbeFailure(.error, detail: detail)
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
            return ProbeFailure(.badResponse, detail: detail)
        }
        if error is SocketAddressError { return ProbeFailure(.dns, detail: detail) }
        let type = String(reflecting: type(of: error))
        if type.contains("SSL") || type.contains("TLS") { return ProbeFailure(.tls, detail: detail) }
        if type.contains("DNS") || type.contains("Resolution") { return ProbeFailure(.dns, detail: detail) }
        return ProbeFailure(.error, detail: detail)
    }
}
