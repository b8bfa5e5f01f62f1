/// ProbeModule is one entry of the script's `modules` table: the per-URL options `/probe?module=NAME`
/// polls a caller's target with, as blackbox_exporter's modules are
/// (https://github.com/prometheus/blackbox_exporter/blob/master/CONFIGURATION.md#module).
///
/// Fields left nil take the script's settings (`method`, `timeout`).
public struct ProbeModule: Sendable, Hashable {
    public var name: String
    public var method: String?
    public var timeout: Duration?
    public var headers: [Header]
    public var expect: ExpectedStatus
    /// How a `tls://` or `https://` target's certificate is checked (`tls = { verify, ca_file, server_name,
    /// cert_expiry }`, as a URL's own; blackbox_exporter's `tls_config`), or nil for the defaults.
    public var tls: TLSOptions?

    public init(
        name: String, method: String? = nil, timeout: Duration? = nil, headers: [Header] = [],
        expect: ExpectedStatus = .default, tls: TLSOptions? = nil
    ) {
        self.name = name
        self.method = method
        self.timeout = timeout
        self.headers = headers
        self.expect = expect
        self.tls = tls
    }

    /// The Target a probe of `url` with this module polls.
    public func target(url: String) -> Target {
        var target = Target(
            url: url, method: self.method, timeout: self.timeout, headers: self.headers, expect: self.expect)
        if Scheme(url) == .tls || url.lowercased().hasPrefix("https:") { target.tls = self.tls }
        return target
    }
}
