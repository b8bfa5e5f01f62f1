/// Exposition writes the Prometheus text exposition format, version 0.0.4: a `# HELP` and a `# TYPE` line
/// per family, then one `name{label="value",...} value` line per series.
///
/// Escaping follows the format's rules: in a label value, `\` becomes `\\`, `"` becomes `\"` and a
/// line feed becomes `\n`; in help text, `\` and the line feed are escaped. Values are written as Go's
/// `ParseFloat` reads them (`+Inf`, `-Inf`, `NaN`, integers without a fraction).
///
/// Source: https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
public struct Exposition: Sendable {
    /// The text written so far, as UTF-8.
    public private(set) var bytes: [UInt8] = []

    /// The `Content-Type` of the format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The metric types the text format names in `# TYPE`.
    public enum MetricType: String, Sendable {
        case counter, gauge, histogram, summary, untyped
    }

    public init(reservingCapacity capacity: Int = 0) {
        self.bytes.reserveCapacity(capacity)
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. `name` must be a valid metric name (urlpoll's are
    /// fixed in the source).
    public mutating func family(_ name: String, _ type: MetricType, help: String) {
        self.append("# HELP ")
        self.append(name)
        self.bytes.append(UInt8(ascii: " "))
        for byte in help.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): self.append("\\\\")
            case UInt8(ascii: "\n"): self.append("\\n")
            default: self.bytes.append(byte)
            }
        }
        self.append("\n# TYPE ")
        self.append(name)
        self.bytes.append(UInt8(ascii: " "))
        self.append(type.rawValue)
        self.bytes.append(UInt8(ascii: "\n"))
    }

    /// Writes one series. `labels` are pre-rendered (``Exposition/render(labels:)``), or empty; `extra`
    /// is one more label, such as `phase` or `state`, whose value is escaped here.
    public mutating func sample(
        _ name: String, labels: [UInt8] = [], extra: (name: String, value: String)? = nil, _ value: Double
    ) {
        self.append(name)
        if !labels.isEmpty || extra != nil {
            self.bytes.append(UInt8(ascii: "{"))
            self.bytes.append(contentsOf: labels)
            if let extra {
                if !labels.isEmpty { self.bytes.append(UInt8(ascii: ",")) }
                Self.appendLabel(extra.name, extra.value, to: &self.bytes)
            }
            self.bytes.append(UInt8(ascii: "}"))
        }
        self.bytes.append(UInt8(ascii: " "))
        Self.appendValue(value, to: &self.bytes)
        self.bytes.append(UInt8(ascii: "\n"))
    }

    /// Appends text already in the format (such as another writer's output).
    public mutating func append(raw: [UInt8]) {
        self.bytes.append(contentsOf: raw)
    }

    /// `a="x",b="y"`: label pairs rendered once, to be reused by every series of a URL.
    public static func render(labels: [(name: String, value: String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, label) in labels.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            Self.appendLabel(label.name, label.value, to: &out)
        }
        return out
    }

    /// Appends `name="value"` with the value escaped.
    static func appendLabel(_ name: String, _ value: String, to out: inout [UInt8]) {
        out.append(contentsOf: name.utf8)
        out.append(UInt8(ascii: "="))
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends a sample value: integral values without a fraction, others in Swift's shortest round-trip
    /// form (which Go's ParseFloat reads), and `+Inf`, `-Inf`, `NaN`.
    static func appendValue(_ value: Double, to out: inout [UInt8]) {
        if value.isNaN {
            out.append(contentsOf: "NaN".utf8)
        } else if value.isInfinite {
            out.append(contentsOf: (value > 0 ? "+Inf" : "-Inf").utf8)
        } else if value == value.rounded(), abs(value) < 1e15 {
            Self.appendInteger(Int64(value), to: &out)
        } else {
            out.append(contentsOf: value.description.utf8)
        }
    }

    /// Appends `n` in decimal, digit by digit (no String made: a scrape writes one per sample).
    static func appendInteger(_ n: Int64, to out: inout [UInt8]) {
        if n < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = n.magnitude
        let start = out.count
        repeat {
            out.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        out[start...].reverse()
    }

    private mutating func append(_ text: String) {
        self.bytes.append(contentsOf: text.utf8)
    }
}
