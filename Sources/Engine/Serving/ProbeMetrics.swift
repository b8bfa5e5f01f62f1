/// ProbeMetrics writes the per-URL families of `/metrics` from the monitor's states, and a single probe's
/// families for `/probe`, with ``Exposition``. The names, types and help texts follow blackbox_exporter
/// 0.28 (prober/handler.go, http.go, tls.go, dns.go, utils.go) where urlpoll measures the same thing
/// (`probe_*`; docs/SCRIPTING.md "Metrics" says which are exact), and use the `urlpoll_` prefix for what
/// blackbox cannot know (state after thresholds, error counts).
///
/// A family is written only for the URLs that have its fact (`probe_http_*` for HTTP polls, the TLS
/// families where a handshake was seen, the DNS families for `dns://`), and a family with no sample is not
/// written at all. Which families are written is the script's ``MetricSet``: the default set, or `"full"`.
///
/// These series are not registered in the swift-prometheus registry: one series per URL there costs
/// quadratic time to register (see the design notes), so they are written straight from a snapshot, with
/// each URL's labels rendered once per script load.
public enum ProbeMetrics {
    /// One URL's series labels, rendered once per script load: `instance` (the URL without credentials),
    /// `name` (the same, when the script gives none), then the URL's own `labels`, sorted by name.
    public struct Series: Sendable {
        /// The URL as the script wrote it (``Target/url``): the key of the monitor's states.
        public let url: String
        /// `instance="…",name="…",…`, escaped.
        public let labels: [UInt8]
        /// The kind of probe, which decides the families the URL can have.
        public let scheme: Scheme
    }

    /// The series labels of each target, in the script's order.
    public static func series(for targets: [Target]) -> [Series] {
        targets.map { target in
            let instance = Self.redacted(target.url)
            let name = target.name == target.url || target.name == target.displayURL ? instance : target.name
            var labels: [(name: String, value: String)] = [("instance", instance), ("name", name)]
            for label in target.labels { labels.append((label.name, label.value)) }
            // The monitor keys its states by the URL as written (two URLs may print alike).
            return Series(url: target.url, labels: Exposition.render(labels: labels), scheme: Scheme(target.url))
        }
    }

    /// Writes the families of `set` for the URLs in `series` that have a state (a URL not yet polled has
    /// none).
    public static func write(
        states: [String: State], series: [Series], set: MetricSet = .default, into out: inout Exposition
    ) {
        var rows: [Row] = []
        rows.reserveCapacity(series.count)
        for entry in series {
            if let state = states[entry.url] {
                rows.append(Row(labels: entry.labels, scheme: entry.scheme, state: state))
            }
        }
        Self.write(rows: rows, set: set, perURL: true, into: &out)
    }

    /// Writes one on-demand probe's families (the full set, as blackbox_exporter's `/probe` does), without
    /// labels: Prometheus adds `instance` and `job`. The result is judged as a poll of `target` would be
    /// (its `expect`, a tcp/tls/dns probe's own verdict), without the script's `check`.
    public static func write(result: ProbeResult, target: Target, at now: Double = 0, into out: inout Exposition) {
        var resource = Resource(target)
        let state = resource.record(result, at: now)
        Self.write(
            rows: [Row(labels: [], scheme: Scheme(target.url), state: state)], set: .full, perURL: false, into: &out)
    }

    /// A URL's labels, its kind and its last State.
    struct Row {
        let labels: [UInt8]
        let scheme: Scheme
        let state: State
    }

    /// The `version` label values of `probe_tls_version_info`, as blackbox_exporter writes them (Go's
    /// `tls.VersionName`), by urlpoll's ``TLSFacts/version``.
    static let tlsVersions: [(fact: String, label: String)] = [
        ("TLSv1.0", "TLS 1.0"), ("TLSv1.1", "TLS 1.1"), ("TLSv1.2", "TLS 1.2"), ("TLSv1.3", "TLS 1.3"),
    ]

    /// `urlpoll_state`'s label values, in its order.
    static let healths: [Health] = [.up, .degraded, .down]

    static func write(rows: [Row], set: MetricSet, perURL: Bool, into out: inout Exposition) {
        gauge("probe_success", help: "Displays whether or not the probe was a success", rows, &out) {
            $0.state.health == .down ? 0 : 1
        }
        gauge(
            "probe_duration_seconds", help: "Returns how long the probe took to complete in seconds", rows, &out
        ) { $0.state.latency.seconds }
        gauge("probe_http_status_code", help: "Response HTTP status code", rows, &out) {
            $0.scheme == .http ? Double($0.state.code ?? 0) : nil
        }
        gauge("probe_ssl_earliest_cert_expiry", help: "Returns earliest SSL cert expiry in unixtime", rows, &out) {
            $0.state.tls?.chainNotAfter
        }
        if set == .full {
            Self.writeFull(rows, &out)
        }
        guard perURL else { return }
        gauge(
            "urlpoll_state",
            help: "The URL's state after expect and check: 1 for the current one of up, degraded, down.",
            rows, label: "state", values: Self.healths.map(\.rawValue), &out
        ) { row, i in
            row.state.health == Self.healths[i] ? 1 : 0
        }
        gauge("urlpoll_error_count", help: "Consecutive failed polls of the URL; 0 after a success.", rows, &out) {
            Double($0.state.errorCount)
        }
    }

    /// The families of the `"full"` set beyond the default ones.
    private static func writeFull(_ rows: [Row], _ out: inout Exposition) {
        let phases = ["resolve", "connect", "tls", "processing", "transfer"]
        gauge(
            "probe_http_duration_seconds", help: "Duration of http request by phase, summed over all redirects",
            rows, label: "phase", values: phases, &out
        ) { row, i in
            guard let t = row.state.timings else { return nil }
            switch i {
            case 0: return t.resolve.seconds
            case 1: return t.connect.seconds
            case 2: return t.tls.seconds
            case 3: return t.processing.seconds
            default: return t.transfer.seconds
            }
        }
        gauge("probe_http_content_length", help: "Length of http content response", rows, &out) {
            $0.state.http.map { Double($0.contentLength ?? -1) }
        }
        gauge("probe_http_uncompressed_body_length", help: "Length of uncompressed response body", rows, &out) {
            $0.state.http.map { Double($0.bodyLength) }
        }
        gauge("probe_http_redirects", help: "The number of redirects", rows, &out) {
            $0.state.http.map { Double($0.redirects) }
        }
        gauge("probe_http_ssl", help: "Indicates if SSL was used for the final redirect", rows, &out) {
            $0.state.http.map { $0.ssl ? 1 : 0 }
        }
        gauge("probe_http_version", help: "Returns the version of HTTP of the probe response", rows, &out) {
            $0.state.http?.version
        }
        gauge("probe_ip_protocol", help: "Specifies whether probe ip protocol is IP4 or IP6", rows, &out) {
            $0.state.http?.ipProtocol.map(Double.init)
        }
        gauge(
            "probe_tls_version_info", help: "Contains the TLS version used", rows, label: "version",
            values: Self.tlsVersions.map(\.label), &out
        ) { row, i in
            row.state.tls?.version == Self.tlsVersions[i].fact ? 1 : nil
        }
        gauge(
            "probe_dns_query_succeeded", help: "Displays whether or not the query was executed successfully", rows,
            &out
        ) { $0.scheme == .dns ? ($0.state.dns == nil ? 0 : 1) : nil }
        gauge("probe_dns_answer_rrs", help: "Returns number of entries in the answer resource record list", rows, &out)
        {
            $0.state.dns.map { Double($0.answers.count) }
        }
        gauge(
            "probe_dns_authority_rrs", help: "Returns number of entries in the authority resource record list", rows,
            &out
        ) { $0.state.dns.map { Double($0.authorityCount) } }
        gauge(
            "probe_dns_additional_rrs", help: "Returns number of entries in the additional resource record list",
            rows, &out
        ) { $0.state.dns.map { Double($0.additionalCount) } }
        gauge("probe_dns_serial", help: "Returns the serial number of the zone", rows, &out) { $0.state.dns?.serial }
    }

    /// Writes a gauge family: one sample per row `value` has a number for; no lines at all when none has.
    private static func gauge(
        _ name: String, help: String, _ rows: [Row], _ out: inout Exposition, _ value: (Row) -> Double?
    ) {
        var started = false
        for row in rows {
            guard let v = value(row) else { continue }
            if !started {
                out.family(name, .gauge, help: help)
                started = true
            }
            out.sample(name, labels: row.labels, v)
        }
    }

    /// Writes a gauge family with one more label: a sample per row and label value that `value` (given the
    /// value's index) has a number for.
    private static func gauge(
        _ name: String, help: String, _ rows: [Row], label: String, values: [String], _ out: inout Exposition,
        _ value: (Row, Int) -> Double?
    ) {
        var started = false
        for row in rows {
            for i in values.indices {
                guard let v = value(row, i) else { continue }
                if !started {
                    out.family(name, .gauge, help: help)
                    started = true
                }
                out.sample(name, labels: row.labels, extra: (label, values[i]), v)
            }
        }
    }

    /// `url` without the `user:password@` of its authority, so nothing served carries credentials.
    public static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return url }
        return String(url[..<scheme.upperBound]) + String(rest[rest.index(after: at)...])
    }
}
