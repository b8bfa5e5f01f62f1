/// MetricSet is which per-URL families `/metrics` writes (the script's `metrics` setting).
///
/// Every URL's series cost Prometheus memory, so the default set is small (4–6 series per URL); `"full"`
/// adds the rest of blackbox_exporter's families where urlpoll has the fact (per-phase timings, the HTTP
/// exchange, the TLS version, the DNS sections), about 20 series per HTTPS URL. `/probe` always writes the
/// full set: it answers for one target. See docs/SCRIPTING.md, "Per-URL families".
public enum MetricSet: String, Sendable, Hashable, CaseIterable {
    /// `probe_success`, `probe_duration_seconds`, `probe_http_status_code`, `probe_ssl_earliest_cert_expiry`
    /// (where a TLS handshake was seen), `urlpoll_state`, `urlpoll_error_count`.
    case `default`
    /// The default set, plus every other blackbox_exporter family urlpoll has the fact for.
    case full
}
