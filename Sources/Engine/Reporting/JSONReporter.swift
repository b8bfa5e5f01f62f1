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
    /// `error`, `detail`, `error_count`, `latency`, `polls`, `since`, `checked_at`, `lateness`), for a change the
    /// previous `prev_status` and `prev_state` (null on a URL's first result), then, only where the poll saw
    /// them, the objects `tls`, `dns`, `timings` and `http` (docs/SCRIPTING.md, "JSON output", gives their
    /// fields). Times are in seconds (durations) or seconds since the epoch (instants).
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
        if let tls = state.tls { line.add("tls", json: Self.object(tls, now: state.checkedAt)) }
        if let dns = state.dns { line.add("dns", json: Self.object(dns)) }
        if let timings = state.timings { line.add("timings", json: Self.object(timings)) }
        if let http = state.http { line.add("http", json: Self.object(http)) }
        return line.text
    }

    /// `{"version","cipher"?,"subject","issuer","sans","not_before","not_after","chain_not_after","days_left"}`,
    /// as Lua's `res.tls`; `days_left` counted from `now`.
    static func object(_ tls: TLSFacts, now: Double) -> String {
        var o = JSONLine()
        o.add("version", tls.version)
        if let cipher = tls.cipher { o.add("cipher", cipher) }
        o.add("subject", tls.subject)
        o.add("issuer", tls.issuer)
        o.add("sans", tls.sans)
        o.add("not_before", tls.notBefore)
        o.add("not_after", tls.notAfter)
        o.add("chain_not_after", tls.chainNotAfter)
        o.add("days_left", Double(tls.daysLeft(at: now)))
        return o.text
    }

    /// `{"rcode","server","answers":[{"name","type","ttl","data"}],"authority_count","additional_count"}`.
    static func object(_ dns: DNSFacts) -> String {
        var o = JSONLine()
        o.add("rcode", dns.rcode)
        o.add("server", dns.server)
        let answers = dns.answers.map { answer in
            var a = JSONLine()
            a.add("name", answer.name)
            a.add("type", answer.type)
            a.add("ttl", Double(answer.ttl))
            a.add("data", answer.data)
            return a.text
        }
        o.add("answers", json: "[" + answers.joined(separator: ",") + "]")
        o.add("authority_count", Double(dns.authorityCount))
        o.add("additional_count", Double(dns.additionalCount))
        return o.text
    }

    /// `{"resolve","connect","tls","processing","transfer"}`, seconds.
    static func object(_ timings: PhaseTimings) -> String {
        var o = JSONLine()
        for (name, duration) in timings.phases { o.add(name, duration.seconds) }
        return o.text
    }

    /// `{"version","content_length","body_length","redirects","ssl","ip_protocol"}`; `content_length` and
    /// `ip_protocol` are null when unknown.
    static func object(_ http: HTTPFacts) -> String {
        var o = JSONLine()
        o.add("version", http.version)
        o.add("content_length", http.contentLength.map(Double.init))
        o.add("body_length", Double(http.bodyLength))
        o.add("redirects", Double(http.redirects))
        o.add("ssl", http.ssl)
        o.add("ip_protocol", http.ipProtocol.map(Double.init))
        return o.text
    }
}
