import Engine
import Testing

/// The exposition writer's output, read back by a real Prometheus text parser.
@Suite(.timeLimit(.minutes(2))) struct ExpositionTests {
    static func render(_ pairs: [(Target, State)]) -> String {
        var out = Exposition()
        ProbeMetrics.write(
            states: Dictionary(uniqueKeysWithValues: pairs.map { ($0.1.rawURL, $0.1) }),
            series: ProbeMetrics.series(for: pairs.map(\.0)), into: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    @Test func labels_withQuotesBackslashesAndNewlines_areEscaped_andReadBackExactly() async throws {
        let url = #"http://127.0.0.1:9/a\b"c?d="e\"#
        let name = "line one\nsays \"hi\" \\ then \\n stays"
        var target = Target(url: url, name: name)
        target.labels = [MetricLabel("team", "d\"b\\\nops"), MetricLabel("tier", "")]
        let state = State(url: url, name: name, status: "200 OK", code: 200, health: .up)

        let text = Self.render([(target, state)])
        let samples = try await parsePrometheus(text)

        let success = try #require(samples.first { $0.name == "probe_success" })
        #expect(success.labels == ["instance": url, "name": name, "team": "d\"b\\\nops", "tier": ""])
        #expect(success.value == 1)
        // Every line of the text is one sample or one comment: no raw newline escaped a label.
        #expect(
            text.split(separator: "\n").allSatisfy {
                $0.hasPrefix("#") || $0.hasPrefix("probe_") || $0.hasPrefix("urlpoll_")
            })
    }

    @Test func eachURL_getsItsValues_andTheStateFamilyMarksOnlyTheCurrentState() async throws {
        let up = Target(url: "http://127.0.0.1:9/up")
        let down = Target(url: "http://127.0.0.1:9/down")
        let samples = try await parsePrometheus(
            Self.render([
                (
                    up,
                    State(
                        url: up.url, name: up.name, status: "200 OK", code: 200, health: .up,
                        latency: .milliseconds(250))
                ),
                (
                    down,
                    State(
                        url: down.url, name: down.name, status: "refused", health: .down, error: "refused",
                        errorCount: 3,
                        latency: .milliseconds(2))
                ),
            ]))
        func value(_ name: String, _ url: String, state: String? = nil) -> Double? {
            samples.first { $0.name == name && $0.labels["instance"] == url && $0.labels["state"] == state }?.value
        }
        #expect(value("probe_success", up.url) == 1)
        #expect(value("probe_success", down.url) == 0)
        #expect(value("probe_duration_seconds", up.url) == 0.25)
        #expect(value("probe_http_status_code", up.url) == 200)
        #expect(value("probe_http_status_code", down.url) == 0)
        #expect(value("urlpoll_error_count", down.url) == 3)
        #expect(value("urlpoll_state", down.url, state: "down") == 1)
        #expect(value("urlpoll_state", down.url, state: "up") == 0)
        #expect(value("urlpoll_state", down.url, state: "degraded") == 0)
        #expect(value("urlpoll_state", up.url, state: "up") == 1)
    }

    @Test func aURLNotYetPolled_hasNoSeries() async throws {
        let polled = Target(url: "http://127.0.0.1:9/a")
        var out = Exposition()
        ProbeMetrics.write(
            states: [polled.url: State(url: polled.url, name: polled.name, status: "200 OK", code: 200, health: .up)],
            series: ProbeMetrics.series(for: [polled, Target(url: "http://127.0.0.1:9/b")]), into: &out)
        let samples = try await parsePrometheus(String(decoding: out.bytes, as: UTF8.self))
        #expect(Set(samples.compactMap { $0.labels["instance"] }) == [polled.url])
    }

    @Test func credentialsInAURL_areNeverServed() async throws {
        let url = "http://alice:s3cret@127.0.0.1:9/private?x=1"
        let target = Target(url: url)
        // A State carries the URL as printed (credentials redacted) and, as the monitor's key, as written.
        let state = State(
            url: target.displayURL, rawURL: target.url, name: target.name, status: "200 OK", code: 200, health: .up)
        let text = Self.render([(target, state)])
        #expect(!text.contains("s3cret"))
        #expect(!text.contains("alice"))
        let samples = try await parsePrometheus(text)
        #expect(samples.contains { $0.name == "probe_success" }, "the URL's series are served")
        #expect(samples.first?.labels["instance"] == "http://127.0.0.1:9/private?x=1")
        #expect(samples.first?.labels["name"] == "http://127.0.0.1:9/private?x=1")
        #expect(ProbeMetrics.redacted("http://127.0.0.1:9/a@b") == "http://127.0.0.1:9/a@b")
    }

    @Test func values_areWrittenAsPrometheusReadsThem() async throws {
        var out = Exposition()
        out.family("t", .gauge, help: "help with \\ and\nnewline")
        out.sample("t", extra: ("v", "inf"), .infinity)
        out.sample("t", extra: ("v", "-inf"), -.infinity)
        out.sample("t", extra: ("v", "nan"), .nan)
        out.sample("t", extra: ("v", "int"), 42)
        out.sample("t", extra: ("v", "frac"), 0.000123)
        let text = String(decoding: out.bytes, as: UTF8.self)
        #expect(text.contains("# HELP t help with \\\\ and\\nnewline\n"))
        #expect(text.contains("t{v=\"int\"} 42\n"))
        let samples = try await parsePrometheus(text)
        let byKind = Dictionary(uniqueKeysWithValues: samples.map { ($0.labels["v"] ?? "", $0.value) })
        #expect(byKind["inf"] == .infinity)
        #expect(byKind["-inf"] == -.infinity)
        #expect(byKind["nan"]?.isNaN == true)
        #expect(byKind["int"] == 42)
        #expect(byKind["frac"] == 0.000123)
    }
}
