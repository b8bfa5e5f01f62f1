/// ProbeResult is what one poll saw: a response with a status code, or a failure, and how long it took.
public struct ProbeResult: Sendable, Hashable {
    /// What the poll got: a response, or a failure.
    public enum Outcome: Sendable, Hashable {
        /// The server answered with this status code and reason phrase.
        case response(code: Int, reason: String)
        /// No usable response.
        case failure(ProbeFailure)
        /// A probe without HTTP statuses (`tcp://`, `tls://`, `dns://`) got its answer, and judged it.
        case reply(Reply)
    }

    /// What a `tcp://`, `tls://` or `dns://` probe got back, and its own judgement of it, which a `check`
    /// hook may overrule.
    public struct Reply: Sendable, Hashable {
        /// What reports show: `"connected"` (TCP), the TLS version such as `"TLSv1.3"`, or the DNS response
        /// code (`"NOERROR"`, `"NXDOMAIN"`; RFC 1035 §4.1.1, RFC 6895).
        public var status: String
        /// Up, or degraded (a certificate within `cert_expiry` days), or down (a DNS code outside `expect`).
        public var health: Health
        /// The short error kind when not up: `"cert_expiry"`, `"rcode"`, `"no_answer"`.
        public var error: String?
        /// The reason in words when not up.
        public var detail: String?

        public init(_ status: String, health: Health = .up, error: String? = nil, detail: String? = nil) {
            self.status = status
            self.health = health
            self.error = error
            self.detail = detail
        }
    }

    /// Why a response that is fine by its status is degraded all the same: an `https://` chain that expires
    /// within the URL's `tls.cert_expiry` days (error `cert_expiry`, with the same words as a `tls://` URL).
    public struct Warning: Sendable, Hashable {
        /// The short error kind: `"cert_expiry"`.
        public var error: String
        /// The reason in words.
        public var detail: String

        public init(error: String, detail: String) {
            self.error = error
            self.detail = detail
        }
    }

    /// The response's status, or why there was none.
    public var outcome: Outcome
    /// Time from sending the request to the end of the response (or the failure).
    public var latency: Duration
    /// Response headers, kept only when the target asks for them (``Target/captureHeaders``).
    public var headers: [Header]
    /// The response body (up to the prober's cap), kept only when the target asks for it
    /// (``Target/captureBody``).
    public var body: [UInt8]?
    /// The certificate a TLS handshake saw (`tls://`, and `https://` on urlpoll's own client; also on a `tls`
    /// failure when the handshake got that far), or `nil`.
    public var tls: TLSFacts?
    /// The DNS response (`dns://`), or `nil`.
    public var dns: DNSFacts?
    /// Per-phase times of an HTTP poll (``PhaseTimings``), summed over its hops; `nil` for a failed poll, and
    /// through AsyncHTTPClient (the tests' switch), which does not expose them.
    public var timings: PhaseTimings?
    /// Facts of an HTTP poll's last exchange (version, lengths, redirects; ``HTTPFacts``), or `nil` for a
    /// failed poll.
    public var http: HTTPFacts?
    /// What makes a response degraded though its status is expected (``Warning``), or `nil`. A status outside
    /// `expect`, or a `check` hook's verdict, decides over it.
    public var warning: Warning?

    public init(
        _ outcome: Outcome, latency: Duration = .zero, headers: [Header] = [], body: [UInt8]? = nil,
        tls: TLSFacts? = nil, dns: DNSFacts? = nil
    ) {
        self.outcome = outcome
        self.latency = latency
        self.headers = headers
        self.body = body
        self.tls = tls
        self.dns = dns
    }

    /// Whether a `check` hook judges this result: a response, or a reply, but not a failure.
    public var isJudged: Bool {
        if case .failure = self.outcome { return false }
        return true
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
