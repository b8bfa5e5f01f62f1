/// Prober sends one request for a URL and says what came back. The engine's only door to the network.
public protocol Prober: Sendable {
    /// Polls `target` once. Never throws: every failure is a ``ProbeResult`` with a ``ProbeFailure``.
    func probe(_ target: Target, settings: Settings) async -> ProbeResult
}

/// ProbeResult is what one poll saw: a response with a status code, or a failure, and how long it took.
public struct ProbeResult: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        /// The server answered with this status code and reason phrase.
        case response(code: Int, reason: String)
        /// No usable response.
        case failure(ProbeFailure)
    }

    public var outcome: Outcome
    /// Time from sending the request to the end of the response (or the failure).
    public var latency: Duration
    /// Response headers, kept only when the target asks for them (``Target/captureHeaders``).
    public var headers: [Header]
    /// The response body (up to the prober's cap), kept only when the target asks for it
    /// (``Target/captureBody``).
    public var body: [UInt8]?

    public init(_ outcome: Outcome, latency: Duration = .zero, headers: [Header] = [], body: [UInt8]? = nil) {
        self.outcome = outcome
        self.latency = latency
        self.headers = headers
        self.body = body
    }

    public static func status(
        _ code: Int, _ reason: String? = nil, latency: Duration = .zero, headers: [Header] = [], body: String? = nil
    ) -> ProbeResult {
        ProbeResult(
            .response(code: code, reason: reason ?? HTTPReason.phrase(for: code)), latency: latency,
            headers: headers, body: body.map { Array($0.utf8) })
    }

    public static func failed(_ kind: ProbeFailure.Kind, _ detail: String = "", latency: Duration = .zero)
        -> ProbeResult
    {
        ProbeResult(.failure(ProbeFailure(kind, detail: detail)), latency: latency)
    }
}

/// ProbeFailure is why a poll got no usable response: a short, bounded kind for reports, alerts and
/// metrics labels, and the full text in `detail`.
public struct ProbeFailure: Error, Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The connection was refused.
        case refused
        /// No complete response within the timeout.
        case timeout
        /// The connection was reset or closed before a complete response.
        case reset
        /// The host name did not resolve.
        case dns
        /// No route to the address.
        case unreachable
        /// The TLS handshake or certificate check failed.
        case tls
        /// Too many redirects, or a redirect loop.
        case redirect
        /// The server sent something that is not valid HTTP.
        case badResponse = "bad_response"
        /// The URL cannot be requested.
        case badURL = "bad_url"
        /// Anything else.
        case error
    }

    public var kind: Kind
    public var detail: String

    public init(_ kind: Kind, detail: String) {
        self.kind = kind
        self.detail = detail
    }
}

/// Reason phrases for the status line, so a State reads like the seed's `200 OK`.
enum HTTPReason {
    static func phrase(for code: Int) -> String {
        switch code {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 418: "I'm a teapot"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: ""
        }
    }
}
