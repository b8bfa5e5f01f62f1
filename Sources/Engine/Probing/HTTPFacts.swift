/// HTTPFacts is what an HTTP poll saw of the exchange besides its status, for blackbox_exporter's
/// `probe_http_*` families (prober/http.go) and the `res.http` hook field.
public struct HTTPFacts: Sendable, Hashable {
    /// The final response's HTTP version, as blackbox's `probe_http_version` gives it: `1.1`, `1.0`, `2.0`.
    public var version: Double
    /// The final response's `Content-Length`, or `nil` when it sent none (chunked, or read to close);
    /// blackbox's `probe_http_content_length` (-1 there when unknown).
    public var contentLength: Int?
    /// The body bytes read from the final response, after any content coding was undone, up to the prober's
    /// cap (`probe_http_uncompressed_body_length`).
    public var bodyLength: Int
    /// Redirects followed in this poll (`probe_http_redirects`).
    public var redirects: Int
    /// Whether the final hop went over TLS (`probe_http_ssl`).
    public var ssl: Bool
    /// 4 or 6: the IP version of the final hop's connection (`probe_ip_protocol`), or `nil` when unknown.
    public var ipProtocol: Int?

    public init(
        version: Double = 1.1, contentLength: Int? = nil, bodyLength: Int = 0, redirects: Int = 0, ssl: Bool = false,
        ipProtocol: Int? = nil
    ) {
        self.version = version
        self.contentLength = contentLength
        self.bodyLength = bodyLength
        self.redirects = redirects
        self.ssl = ssl
        self.ipProtocol = ipProtocol
    }
}
