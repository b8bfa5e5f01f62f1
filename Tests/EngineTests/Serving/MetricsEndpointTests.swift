import AsyncHTTPClient
import Engine
import Logging
import Testing

/// The listener on loopback, scraped while the real prober polls real loopback servers.
@Suite(.timeLimit(.minutes(2))) struct MetricsEndpointTests {
    /// Runs a MetricsServer on a free loopback port for `body`, and stops it afterwards.
    static func withServer(
        source: MetricsSource, metrics: EngineMetrics, prober: any Prober, logger: Logger = Logger(label: "test"),
        _ body: @Sendable (_ base: String) async throws -> Void
    ) async throws {
        try await withService(
            { onReady in
                MetricsServer(
                    address: ListenAddress(host: "127.0.0.1", port: 0), source: source, metrics: metrics,
                    prober: prober, logger: logger, onReady: onReady)
            }, body)
    }

    @Test func scrape_whilePollingLoopbackServers_givesEachURLsValues_inTextThatParses() async throws {
        let hanging = try HangingListener()
        let refused = "http://127.0.0.1:\(try closedPort())/"
        try await withDemoSite { (site) async throws in
            let healthy = {
                var target = Target(url: site + "/healthy", name: "the \"healthy\" page")
                target.labels = [MetricLabel("team", "web")]
                return target
            }()
            let targets = [
                healthy, Target(url: site + "/failing", method: "GET"), Target(url: refused),
                Target(url: site + "/health.json?delay=300", method: "GET", timeout: .seconds(5)),
                Target(url: hanging.url + "/", timeout: .milliseconds(500)), Target(url: site + "/redirect"),
            ]
            let metrics = EngineMetrics()
            let source = MetricsSource()
            let monitor = StateMonitor(
                urls: targets.map(\.url), reporter: TextReporter(output: Output { _ in }), observers: [metrics])
            var settings = Settings()
            settings.pollers = 6
            source.serve(monitor: monitor, targets: targets, settings: settings)
            let client = HTTPProber.makeClient(pollers: 6)
            let prober = HTTPProber(client: client)
            let pool = PollerPool(
                settings: settings, targets: targets, prober: prober, policy: LinearBackoff(), monitor: monitor,
                clock: ContinuousClock())

            try await Self.withServer(source: source, metrics: metrics, prober: prober) { base in
                // Before the first pass, the orchestrator is told to wait.
                let early = try await fetch(base + "/healthz")
                #expect(early.status == 503)
                #expect(early.body.contains("first pass"))

                // Twice, so the second pass of plain-HTTP URLs goes over kept-alive connections (each pass
                // starts from fresh Resources, so error counts are 1, not 2).
                _ = await pool.runOnce()
                _ = await pool.runOnce()

                let scrape = try await fetch(base + "/metrics")
                #expect(scrape.status == 200)
                #expect(scrape.contentType == "text/plain; version=0.0.4; charset=utf-8")
                let samples = try await parsePrometheus(scrape.body)
                func value(_ name: String, _ url: String, state: String? = nil) -> Double? {
                    samples.first { $0.name == name && $0.labels["instance"] == url && $0.labels["state"] == state }?
                        .value
                }
                // healthy, with its own name and labels
                let labels = samples.first { $0.name == "probe_success" && $0.labels["instance"] == healthy.url }?
                    .labels
                #expect(labels == ["instance": healthy.url, "name": "the \"healthy\" page", "team": "web"])
                #expect(value("probe_success", healthy.url) == 1)
                #expect(value("probe_http_status_code", healthy.url) == 200)
                #expect(value("urlpoll_state", healthy.url, state: "up") == 1)
                #expect(value("urlpoll_error_count", healthy.url) == 0)
                // 500
                #expect(value("probe_success", site + "/failing") == 0)
                #expect(value("probe_http_status_code", site + "/failing") == 500)
                #expect(value("urlpoll_state", site + "/failing", state: "down") == 1)
                #expect(value("urlpoll_error_count", site + "/failing") == 1)
                // refused
                #expect(value("probe_success", refused) == 0)
                #expect(value("probe_http_status_code", refused) == 0)
                #expect(value("urlpoll_error_count", refused) == 1)
                // slow, within its timeout
                #expect(value("probe_success", site + "/health.json?delay=300") == 1)
                #expect((value("probe_duration_seconds", site + "/health.json?delay=300") ?? 0) >= 0.3)
                // slow, past its timeout
                #expect(value("probe_success", hanging.url + "/") == 0)
                #expect((value("probe_duration_seconds", hanging.url + "/") ?? 0) >= 0.5)
                // redirect, followed
                #expect(value("probe_success", site + "/redirect") == 1)
                #expect(value("probe_http_status_code", site + "/redirect") == 200)
                // urlpoll's own and the process's
                let success = samples.first { $0.name == "urlpoll_polls_total" && $0.labels["result"] == "success" }
                let failure = samples.first { $0.name == "urlpoll_polls_total" && $0.labels["result"] == "failure" }
                #expect(success?.value == 6)
                #expect(failure?.value == 6)
                #expect(samples.first { $0.name == "urlpoll_poll_lateness_seconds_count" }?.value == 12)
                #expect((samples.first { $0.name == "process_resident_memory_bytes" }?.value ?? 0) > 0)
                #expect((samples.first { $0.name == "process_open_fds" }?.value ?? 0) > 0)
                #expect((samples.first { $0.name == "process_start_time_seconds" }?.value ?? 0) > 1.7e9)

                let health = try await fetch(base + "/healthz")
                #expect(health.status == 200)
                #expect(health.body == "ok\n")
                #expect(try await fetch(base + "/probe?target=\(site)/healthy").status == 404)
                #expect(try await fetch(base + "/elsewhere").status == 404)
            }
            try await client.shutdown()
        }
    }

    @Test func probe_withAModule_pollsTheTargetOnce_andRefusesWhatTheScriptDoesNotPoll() async throws {
        try await withDemoSite { (site) async throws in
            let source = MetricsSource()
            let targets = [Target(url: site + "/healthy")]
            let monitor = StateMonitor(urls: targets.map(\.url), reporter: TextReporter(output: Output { _ in }))
            source.serve(
                monitor: monitor, targets: targets, settings: Settings(),
                modules: [
                    "http_2xx": ProbeModule(
                        name: "http_2xx", method: "GET", expect: ExpectedStatus(ranges: [200...299]))
                ])
            let client = HTTPProber.makeClient(pollers: 2)
            let prober = HTTPProber(client: client)
            try await Self.withServer(source: source, metrics: EngineMetrics(), prober: prober) { base in
                let ok = try await fetch(base + "/probe?target=\(site)/healthy&module=http_2xx")
                #expect(ok.status == 200)
                let okSamples = try await parsePrometheus(ok.body)
                #expect(okSamples.first { $0.name == "probe_success" }?.value == 1)
                #expect(okSamples.first { $0.name == "probe_http_status_code" }?.value == 200)
                #expect(okSamples.allSatisfy { $0.labels.isEmpty })

                // A redirect is outside this module's 2xx: blackbox follows it too, so it is the final 200 here.
                let failing = try await parsePrometheus(try await fetch(base + "/probe?target=\(site)/failing").body)
                #expect(failing.first { $0.name == "probe_success" }?.value == 0)
                #expect(failing.first { $0.name == "probe_http_status_code" }?.value == 500)

                let unknown = try await fetch(base + "/probe?target=\(site)/healthy&module=tcp_connect")
                #expect(unknown.status == 400)
                #expect(unknown.body == "unknown module \"tcp_connect\" (the script's modules: http_2xx)\n")
                let https = try await fetch(base + "/probe?target=https://127.0.0.1:1/")
                #expect(https.status == 400)
                #expect(https.body.contains("the script polls no https URL"))
                let noTarget = try await fetch(base + "/probe?module=http_2xx")
                #expect(noTarget.status == 400)
                let ftp = try await fetch(base + "/probe?target=ftp://127.0.0.1/")
                #expect(ftp.status == 400)
                #expect(ftp.body.contains("unsupported scheme \"ftp\""))
            }
            try await client.shutdown()
        }
    }

    @Test func healthz_whenPollsStartFarBehindSchedule_answers503WithTheReason() {
        let metrics = EngineMetrics()
        let late = State(url: "u", name: "u", status: "200 OK", health: .up, lateness: .seconds(25))
        metrics.record(late)
        let problem = metrics.health(expected: 1, polled: 1)
        #expect(problem?.contains("25 s behind schedule") == true)
        // Once the last polls are on time again, it is healthy.
        for _ in 0..<64 { metrics.record(State(url: "u", name: "u", status: "200 OK", health: .up)) }
        #expect(metrics.health(expected: 1, polled: 1) == nil)
        #expect(metrics.health(expected: 2, polled: 1) == "the first pass is not done: 1 of 2 URLs polled")
    }

    @Test func listenAddress_parsesHostAndPort_andSaysWhatIsWrong() throws {
        #expect(try ListenAddress(parsing: "127.0.0.1:9464") == ListenAddress(host: "127.0.0.1", port: 9464))
        #expect(try ListenAddress(parsing: "[::1]:0") == ListenAddress(host: "::1", port: 0))
        #expect(try ListenAddress(parsing: "[::1]:0").isLoopback)
        #expect(try !ListenAddress(parsing: "0.0.0.0:9464").isLoopback)
        #expect(throws: ListenAddress.Problem.self) { try ListenAddress(parsing: "9464") }
        #expect(throws: ListenAddress.Problem.self) { try ListenAddress(parsing: ":9464") }
        #expect(throws: ListenAddress.Problem.self) { try ListenAddress(parsing: "127.0.0.1:70000") }
        #expect(throws: ListenAddress.Problem.self) { try ListenAddress(parsing: "::1:80") }
    }
}
