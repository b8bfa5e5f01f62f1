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

    public init(
        name: String, method: String? = nil, timeout: Duration? = nil, headers: [Header] = [],
        expect: ExpectedStatus = .default
    ) {
        self.name = name
        self.method = method
        self.timeout = timeout
        self.headers = headers
        self.expect = expect
    }

    /// The Target a probe of `url` with this module polls.
    public func target(url: String) -> Target {
        Target(url: url, method: self.method, timeout: self.timeout, headers: self.headers, expect: self.expect)
    }
}
