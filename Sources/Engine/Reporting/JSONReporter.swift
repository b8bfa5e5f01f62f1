import FoundationEssentials

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
