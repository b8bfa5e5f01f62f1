import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Reporter receives the monitor's full state on every tick, sorted by URL.
public protocol Reporter: Sendable {
    func report(_ states: [State]) async
}

/// Output is where reports go: standard output for the program, a buffer in tests.
public struct Output: Sendable {
    private let write: @Sendable (String) -> Void

    public init(_ write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    public func callAsFunction(_ text: String) {
        self.write(text)
    }

    /// Writes straight to file descriptor 1, so lines interleave correctly with Lua's `print`, which
    /// flushes C's stdout after every line.
    public static let standardOutput = Output { Self.write($0, to: 1) }

    /// Writes straight to file descriptor 2.
    public static let standardError = Output { Self.write($0, to: 2) }

    private static func write(_ text: String, to descriptor: Int32) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

/// TextReporter prints the seed's block: `Current state:` then one ` URL STATUS` line per URL. A URL that
/// a `check` judged degraded or down says so after its status.
public struct TextReporter: Reporter {
    let output: Output

    public init(output: Output) {
        self.output = output
    }

    public func report(_ states: [State]) async {
        var text = "Current state:\n"
        for state in states {
            text += " \(state.url) \(state.status)"
            if state.error == "check" {
                text += " (\(state.health.rawValue)\(state.detail.map { ": \($0)" } ?? ""))"
            }
            text += "\n"
        }
        self.output(text)
    }
}

/// JSONReporter prints one JSON object per URL per tick (JSON lines), for jq and log shippers.
public struct JSONReporter: Reporter {
    let output: Output

    public init(output: Output) {
        self.output = output
    }

    public func report(_ states: [State]) async {
        var text = ""
        for state in states {
            text += Self.line(event: "report", state) + "\n"
        }
        self.output(text)
    }

    /// One JSON object: `event`, then the state's fields (`url`, `name`, `status`, `state`, `code`, `ok`,
    /// `error`, `detail`, `error_count`, `latency`, `polls`, `since`, `checked_at`, `lateness`), and for a change the
    /// previous `prev_status` and `prev_state` (null on a URL's first result). Times are in seconds.
    public static func line(event: String, _ state: State, previous: State?? = nil) -> String {
        var line = JSONLine()
        line.add("event", event)
        line.add("url", state.url)
        line.add("name", state.name)
        line.add("status", state.status)
        line.add("state", state.health.rawValue)
        line.add("code", state.code.map(Double.init))
        line.add("ok", state.ok)
        line.add("error", state.error)
        line.add("detail", state.detail)
        line.add("error_count", Double(state.errorCount))
        line.add("latency", state.latency.seconds)
        line.add("polls", Double(state.polls))
        line.add("since", state.since)
        line.add("checked_at", state.checkedAt)
        line.add("lateness", state.lateness.seconds)
        if let previous {
            line.add("prev_status", previous?.status)
            line.add("prev_state", previous?.health.rawValue)
        }
        return line.text
    }
}

/// JSONLine builds one JSON object with its keys in the order added.
struct JSONLine {
    private var text_ = "{"

    var text: String { self.text_ + "}" }

    private mutating func key(_ key: String) {
        if self.text_.count > 1 { self.text_ += "," }
        LuaRuntime.appendJSONString(key, to: &self.text_)
        self.text_ += ":"
    }

    mutating func add(_ key: String, _ value: String?) {
        self.key(key)
        if let value { LuaRuntime.appendJSONString(value, to: &self.text_) } else { self.text_ += "null" }
    }

    mutating func add(_ key: String, _ value: Double?) {
        self.key(key)
        guard let value, value.isFinite else {
            self.text_ += "null"
            return
        }
        self.text_ += value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    mutating func add(_ key: String, _ value: Bool) {
        self.key(key)
        self.text_ += value ? "true" : "false"
    }
}

/// JSONChangePrinter prints each change as a JSON line with `"event": "change"`.
public struct JSONChangePrinter: StateObserver {
    let output: Output

    public init(output: Output) {
        self.output = output
    }

    public func changed(_ state: State, previous: State?) async {
        self.output(JSONReporter.line(event: "change", state, previous: .some(previous)) + "\n")
    }
}
