/// ProbeMetrics writes the per-URL families of `/metrics` from the monitor's states, and a single probe's
/// families for `/probe`, with ``Exposition``. The names and meanings follow blackbox_exporter's http
/// prober where urlpoll measures the same thing (`probe_*`, see docs/SCRIPTING.md "Metrics" for which are
/// exact), and use the `urlpoll_` prefix for what blackbox cannot know (state after thresholds, error
/// counts).
///
/// These series are not registered in the swift-prometheus registry: one series per URL there costs
/// quadratic time to register (see the design notes), so they are written straight from a snapshot.
public enum ProbeMetrics {
    /// One URL's series labels, rendered once per script load: `instance` (the URL without credentials),
    /// `name` (the same, when the script gives none), then the URL's own `labels`, sorted by name.
    public struct Series: Sendable {
        /// The URL as the script wrote it (``Target/url``): the key of the monitor's states.
        public let url: String
        public let labels: [UInt8]
    }

    /// The series labels of each target, in the script's order.
    public static func series(for targets: [Target]) -> [Series] {
        targets.map { target in
            let instance = Self.redacted(target.url)
            let name = target.name == target.url || target.name == target.displayURL ? instance : target.name
            var labels: [(name: String, value: String)] = [("instance", instance), ("name", name)]
            for label in target.labels { labels.append((label.name, label.value)) }
            // The monitor keys its states by the URL as written (two URLs may print alike).
            return Series(url: target.url, labels: Exposition.render(labels: labels))
        }
    }

    /// Writes every family for the URLs in `series` that have a state (a URL not yet polled has none).
    public static func write(states: [String: State], series: [Series], into out: inout Exposition) {
        // One pass to pair each series with its state, then a pass per family.
        var rows: [(labels: [UInt8], state: State)] = []
        rows.reserveCapacity(series.count)
        for entry in series {
            if let state = states[entry.url] { rows.append((entry.labels, state)) }
        }
        out.family("probe_success", .gauge, help: "Whether the last poll succeeded (1) or the URL is down (0).")
        for row in rows { out.sample("probe_success", labels: row.labels, row.state.health == .down ? 0 : 1) }
        out.family("probe_duration_seconds", .gauge, help: "Seconds the last poll took.")
        for row in rows { out.sample("probe_duration_seconds", labels: row.labels, row.state.latency.seconds) }
        out.family(
            "probe_http_status_code", .gauge, help: "The last poll's HTTP status code; 0 when there was no response.")
        for row in rows {
            out.sample("probe_http_status_code", labels: row.labels, Double(row.state.code ?? 0))
        }
        out.family(
            "urlpoll_state", .gauge,
            help: "The URL's state after expect and check: 1 for the current one of up, degraded, down.")
        for row in rows {
            for health in [Health.up, .degraded, .down] {
                out.sample(
                    "urlpoll_state", labels: row.labels, extra: ("state", health.rawValue),
                    row.state.health == health ? 1 : 0)
            }
        }
        out.family("urlpoll_error_count", .gauge, help: "Consecutive failed polls of the URL; 0 after a success.")
        for row in rows { out.sample("urlpoll_error_count", labels: row.labels, Double(row.state.errorCount)) }
    }

    /// Writes one on-demand probe's families, without labels: Prometheus adds `instance` and `job`, as it
    /// does for blackbox_exporter's `/probe`.
    public static func write(result: ProbeResult, target: Target, into out: inout Exposition) {
        let code: Int
        if case .response(let status, _) = result.outcome { code = status } else { code = 0 }
        let success = code != 0 && target.expect.contains(code)
        out.family("probe_success", .gauge, help: "Whether the probe succeeded (1) or failed (0).")
        out.sample("probe_success", success ? 1 : 0)
        out.family("probe_duration_seconds", .gauge, help: "Seconds the probe took.")
        out.sample("probe_duration_seconds", result.latency.seconds)
        out.family("probe_http_status_code", .gauge, help: "The HTTP status code; 0 when there was no response.")
        out.sample("probe_http_status_code", Double(code))
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
