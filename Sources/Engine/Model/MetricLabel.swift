/// MetricLabel is one of a URL's own Prometheus labels, from its `labels = { team = "db" }` table: a name
/// checked against the Prometheus data model (`[a-zA-Z_][a-zA-Z0-9_]*`, not `__`-prefixed, not one urlpoll
/// sets itself) and a value of at most ``maxValueBytes`` bytes of UTF-8.
///
/// Source: the Prometheus data model, "Metric names and labels"
/// (https://prometheus.io/docs/concepts/data_model/).
public struct MetricLabel: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    /// Labels one URL may carry.
    public static var maxCount: Int { 8 }
    /// Bytes a label value may hold.
    public static var maxValueBytes: Int { 128 }
    /// Names urlpoll sets itself, or that Prometheus gives a meaning (`le` on histograms, `quantile` on
    /// summaries, `job` and `instance` on every scraped series). urlpoll's per-URL families add `state`
    /// (`urlpoll_state`), `phase` (`probe_http_duration_seconds`) and `version` (`probe_tls_version_info`)
    /// to the URL's labels: a URL label of the same name would give a series the same label twice, which
    /// Prometheus refuses for the whole scrape.
    public static let reservedNames: Set<String> = [
        "instance", "job", "name", "le", "quantile", "state", "phase", "version",
    ]

    /// Why `name` cannot be a URL's label name, or nil when it can.
    public static func problem(withName name: String) -> String? {
        let bytes = Array(name.utf8)
        func letter(_ c: UInt8) -> Bool {
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || c == UInt8(ascii: "_")
        }
        func digit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        guard let first = bytes.first, letter(first), bytes.dropFirst().allSatisfy({ letter($0) || digit($0) }) else {
            return "is not a Prometheus label name (letters, digits and _, not starting with a digit)"
        }
        if name.hasPrefix("__") { return "starts with __, which Prometheus reserves" }
        if Self.reservedNames.contains(name) {
            return "is set by urlpoll or Prometheus (reserved: \(Self.reservedNames.sorted().joined(separator: ", ")))"
        }
        return nil
    }
}
