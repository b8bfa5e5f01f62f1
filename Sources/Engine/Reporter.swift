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

/// TextReporter prints the seed's block: `Current state:` then one ` URL STATUS` line per URL.
public struct TextReporter: Reporter {
    let output: Output

    public init(output: Output) {
        self.output = output
    }

    public func report(_ states: [State]) async {
        var text = "Current state:\n"
        for state in states {
            text += " \(state.url) \(state.status)\n"
        }
        self.output(text)
    }
}

/// JSONReporter prints one JSON object per URL per tick (JSON lines), for jq and log shippers.
///
/// Fields: `event` (`"report"`), `url`, `name`, `status`, `code`, `ok`, `error`, `detail`,
/// `error_count`, `latency`, `polls`, `since`, `checked_at`; times in seconds.
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

    static func line(event: String, _ state: State) -> String {
        struct Line: Encodable {
            let event: String
            let url: String
            let name: String
            let status: String
            let code: Int?
            let ok: Bool
            let error: String?
            let detail: String?
            let error_count: Int
            let latency: Double
            let polls: Int
            let since: Double
            let checked_at: Double

            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(self.event, forKey: .event)
                try c.encode(self.url, forKey: .url)
                try c.encode(self.name, forKey: .name)
                try c.encode(self.status, forKey: .status)
                try c.encode(self.code, forKey: .code)
                try c.encode(self.ok, forKey: .ok)
                try c.encode(self.error, forKey: .error)
                try c.encode(self.detail, forKey: .detail)
                try c.encode(self.error_count, forKey: .error_count)
                try c.encode(self.latency, forKey: .latency)
                try c.encode(self.polls, forKey: .polls)
                try c.encode(self.since, forKey: .since)
                try c.encode(self.checked_at, forKey: .checked_at)
            }

            enum CodingKeys: String, CodingKey {
                case event, url, name, status, code, ok, error, detail, error_count, latency, polls, since,
                    checked_at
            }
        }
        let line = Line(
            event: event, url: state.url, name: state.name, status: state.status, code: state.code, ok: state.ok,
            error: state.error, detail: state.detail, error_count: state.errorCount, latency: state.latency.seconds,
            polls: state.polls, since: state.since, checked_at: state.checkedAt)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(line) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
