/// ProbeResult is what one poll saw: a response with a status code, or a failure, and how long it took.
public struct ProbeResult: Sendable, Hashable {
    /// What the poll got: a response, or a failure.
    public enum Outcome: Sendable, Hashable {
        /// The server answered with this status code and reason phrase.
        case response(code: Int, reason: String)
        /// No usable response.
        case failure(ProbeFailure)
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
