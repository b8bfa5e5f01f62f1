import Engine
import Foundation
import Logging
import Synchronization
import Testing

/// URLs that differ only by their password print alike (`a:xxxxx@`) but are two URLs: two states in the
/// monitor, two JSON lines, two metric series, two entries of the state file; and hooks can read the URL
/// with its password as `raw_url`, which nothing urlpoll prints carries.
@Suite(.timeLimit(.minutes(2))) struct CredentialsTests {
    @Test func urlsDifferingOnlyByTheirPassword_areReportedSeparately_inTheMonitorJSONMetricsAndStateFile()
        async throws
    {
        // Given: a loopback server that lets a:pw-one in (200) and turns a:pw-two away (401).
        let server = try RecordingServer { request in
            let one = "Basic " + Data("a:pw-one".utf8).base64EncodedString()
            return request.header("Authorization") == [one]
                ? [.ok(request)] : [.ok(request, body: "", status: "401 Unauthorized")]
        }
        let one = "http://a:pw-one@127.0.0.1:\(server.port)/x"
        let two = "http://a:pw-two@127.0.0.1:\(server.port)/x"
        let shown = "http://a:xxxxx@127.0.0.1:\(server.port)/x"
        let instance = "http://127.0.0.1:\(server.port)/x"
        let (host, script) = try loadHost("urls = { \"\(one)\", \"\(two)\" }\n")
        let targets = host.config.targets
        let printed = Mutex("")
        let monitor = StateMonitor(
            urls: targets.map(\.url), reporter: JSONReporter(output: Output { text in printed.withLock { $0 += text } })
        )
        let source = MetricsSource()
        var settings = Settings()
        settings.pollers = 2
        source.serve(monitor: monitor, targets: targets, settings: settings)
        let client = HTTPProber.makeClient(pollers: 2)
        let prober = HTTPProber(client: client)
        let pool = PollerPool(
            settings: settings, targets: targets, prober: prober, policy: LinearBackoff(), monitor: monitor,
            clock: ContinuousClock())

        // When: both are polled once and reported.
        try await MetricsEndpointTests.withServer(source: source, metrics: EngineMetrics(), prober: prober) { base in
            let states = await pool.runOnce()
            await monitor.tick()

            // Then: the monitor holds two states, each with its own status, both printed without a password.
            #expect(states.count == 2)
            #expect(states.map(\.url) == [shown, shown])
            #expect(Set(states.map(\.rawURL)) == [one, two])
            #expect(states.first { $0.rawURL == one }?.status == "200 OK")
            #expect(states.first { $0.rawURL == two }?.status == "401 Unauthorized")
            // The second's default name is numbered, so people and Prometheus can tell them apart.
            #expect(states.first { $0.rawURL == one }?.name == shown)
            #expect(states.first { $0.rawURL == two }?.name == shown + " (2)")

            // JSON: one line each.
            let lines = printed.withLock { $0 }.split(separator: "\n").map(String.init)
            #expect(lines.count == 2)
            #expect(!lines.joined().contains("pw-"))
            let objects = try lines.map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
            let byName = Dictionary(
                objects.map { (($0["name"] as? String) ?? "", ($0["status"] as? String) ?? "") },
                uniquingKeysWith: { first, _ in first })
            #expect(byName == [shown: "200 OK", shown + " (2)": "401 Unauthorized"])

            // Metrics: two series, with different label sets.
            let scrape = try await fetch(base + "/metrics")
            #expect(!scrape.body.contains("pw-"))
            let codes = try await parsePrometheus(scrape.body).filter { $0.name == "probe_http_status_code" }
            #expect(codes.count == 2)
            #expect(Set(codes.map { $0.labels["instance"] }) == [instance])
            #expect(codes.first { $0.labels["name"] == instance }?.value == 200)
            #expect(codes.first { $0.labels["name"] == shown + " (2)" }?.value == 401)
        }
        try await client.shutdown()

        // And: the state file keeps both apart without holding a password, and a restart resumes each.
        let store = StateStore(path: script.sibling("state.json"))
        try store.save(await monitor.snapshot())
        #expect(try !String(contentsOfFile: store.path, encoding: .utf8).contains("pw-"))
        let resumed = StateStore.match(try store.load(), to: targets)
        #expect(resumed.count == 2)
        #expect(resumed.first { $0.rawURL == one }?.status == "200 OK")
        #expect(resumed.first { $0.rawURL == two }?.status == "401 Unauthorized")
    }

    @Test func stateFileOfThePreviousVersion_keyedByThePrintedURL_stillResumes() throws {
        // Given: a file written before URLs were keyed as written: one state under the printed URL.
        let (host, script) = try loadHost(
            "urls = { \"http://a:pw-one@127.0.0.1:9/x\", \"http://127.0.0.1:9/y\", \"http://a:pw-two@127.0.0.1:9/x\" }\n"
        )
        let shown = "http://a:xxxxx@127.0.0.1:9/x"
        let store = StateStore(path: script.sibling("state.json"))
        try store.save([
            State(
                url: shown, name: shown, status: "500 Internal Server Error", code: 500, health: .down, errorCount: 3),
            State(url: "http://127.0.0.1:9/y", name: "http://127.0.0.1:9/y", status: "200 OK", code: 200, health: .up),
        ])

        // When: it is read and paired with the script's URLs.
        let resumed = StateStore.match(try store.load(), to: host.config.targets)

        // Then: the URL that printed as it does resumes; the one added since (numbered) starts fresh.
        #expect(resumed.map(\.rawURL) == ["http://a:pw-one@127.0.0.1:9/x", "http://127.0.0.1:9/y"])
        #expect(resumed.first?.errorCount == 3)
    }

    @Test func hooks_readTheURLWithItsPasswordAsRawURL_andItsPrintedFormAsURL() async throws {
        // Given: hooks that log what they see of a URL with a password.
        let raw = "http://probe:pw-secret@127.0.0.1:9/s"
        let shown = "http://probe:xxxxx@127.0.0.1:9/s"
        let (logger, log) = RecordingLogHandler.make()
        let (host, _) = try loadHost(
            """
            urls = { "\(raw)" }
            function check(res) urlpoll.log("info", "check", res.url, res.raw_url) return "up" end
            function on_result(s, prev) urlpoll.log("info", "on_result", s.url, s.raw_url) end
            function report(s) urlpoll.log("info", "report", s.url, s.raw_url) end
            function backoff(r) urlpoll.log("info", "backoff", r.url, r.raw_url) return 60 end
            """, logger: logger)
        let prober = ScriptedProber([raw: [.status(200)]])
        let monitor = StateMonitor(
            urls: host.config.targets.map(\.url), reporter: host.reporter(fallback: RecordingReporter()),
            observers: [host.observer].compactMap { $0 })
        let pool = PollerPool(
            settings: Settings(), targets: host.config.targets, prober: prober, policy: host.sleepPolicy,
            checker: host.checker, monitor: monitor, clock: ContinuousClock())

        // When: the URL is polled, reported, and its next sleep asked for.
        let states = await pool.runOnce()
        await monitor.tick()
        var resource = Resource(host.config.targets[0])
        resource.record(.status(200), at: 0)
        _ = await host.delay(for: resource, settings: Settings())

        // Then: every hook saw both forms.
        #expect(states.map(\.rawURL) == [raw])
        for hook in ["check", "on_result", "report", "backoff"] {
            #expect(log.all.contains("info: \(hook) \(shown) \(raw)"), "\(hook): \(log.all)")
        }
    }
}
