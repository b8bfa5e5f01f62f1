/// PhaseTimings splits an HTTP poll's time into the phases blackbox_exporter reports as
/// `probe_http_duration_seconds{phase}` (prober/http.go): each phase summed over every hop of the poll
/// (redirects included). A phase that did not happen (no lookup for an address literal, no TLS on plain
/// HTTP, no connect on a kept-alive connection) is zero. Hook tables show it as `res.timings` / `s.timings`
/// (seconds).
public struct PhaseTimings: Sendable, Hashable {
    /// Looking up the host's addresses.
    public var resolve: Duration
    /// Opening the TCP connection.
    public var connect: Duration
    /// The TLS handshake.
    public var tls: Duration
    /// From the request's first byte sent to the response's first byte received (the server's think time).
    public var processing: Duration
    /// From the response's first byte to its last (the body read, up to the prober's cap).
    public var transfer: Duration

    public init(
        resolve: Duration = .zero, connect: Duration = .zero, tls: Duration = .zero, processing: Duration = .zero,
        transfer: Duration = .zero
    ) {
        self.resolve = resolve
        self.connect = connect
        self.tls = tls
        self.processing = processing
        self.transfer = transfer
    }

    /// The phases in blackbox_exporter's order, with its `phase` label values.
    public var phases: [(name: String, duration: Duration)] {
        [
            ("resolve", self.resolve), ("connect", self.connect), ("tls", self.tls),
            ("processing", self.processing), ("transfer", self.transfer),
        ]
    }

    /// Adds another hop's phases to these.
    public mutating func add(_ other: PhaseTimings) {
        self.resolve += other.resolve
        self.connect += other.connect
        self.tls += other.tls
        self.processing += other.processing
        self.transfer += other.transfer
    }
}
