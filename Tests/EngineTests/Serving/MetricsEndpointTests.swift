import AsyncHTTPClient
import Engine
import Foundation
import Logging
import NIOPosix
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

    /// Issue 14 (#12): after a restart that resumed states (`--data`, `--state`), `/healthz` said ok before
    /// the new run had polled anything: resumed states counted as polled. Only states checked since the
    /// listener started count.
    @Test func healthz_afterARestart_waitsForTheFirstPass_notTheResumedStates() async throws {
        try await withDemoSite { (site) async throws in
            let targets = [Target(url: site + "/healthy"), Target(url: site + "/failing")]
            let metrics = EngineMetrics()
            let source = MetricsSource()
            let monitor = StateMonitor(
                urls: targets.map(\.url), reporter: TextReporter(output: Output { _ in }), observers: [metrics])
            // Given: both URLs' states resumed from the run before, checked a minute ago.
            let before = Date().timeIntervalSince1970 - 60
            await monitor.seed(
                targets.map {
                    State(url: $0.url, name: $0.name, status: "200 OK", health: .up, since: before, checkedAt: before)
                })
            let settings = Settings()
            source.serve(monitor: monitor, targets: targets, settings: settings)
            let client = HTTPProber.makeClient(pollers: 2)
            let prober = HTTPProber(client: client)
            let pool = PollerPool(
                settings: settings, targets: targets, prober: prober, policy: LinearBackoff(), monitor: monitor,
                clock: ContinuousClock())
            try await Self.withServer(source: source, metrics: metrics, prober: prober) { base in
                // Then: the first pass of this run is not done.
                let early = try await fetch(base + "/healthz")
                #expect(early.status == 503)
                #expect(early.body == "the first pass is not done: 0 of 2 URLs polled\n")
                // And: once each URL is polled, it is.
                _ = await pool.runOnce()
                let health = try await fetch(base + "/healthz")
                #expect(health.status == 200, "\(health.body)")
            }
            try await client.shutdown()
        }
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
                // No target labels (Prometheus adds `instance`), only a family's own, as blackbox's /probe.
                #expect(okSamples.allSatisfy { Set($0.labels.keys).isSubset(of: ["phase", "version"]) })
                #expect(
                    okSamples.contains {
                        $0.name == "probe_http_duration_seconds" && $0.labels["phase"] == "processing"
                    })

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

    @Test func scrape_whenTheScraperAcceptsGzip_isGzipped_andOnlyThen() async throws {
        let targets = (0..<200).map { Target(url: "http://127.0.0.1:9/page/\($0)") }
        let monitor = StateMonitor(urls: targets.map(\.url), reporter: TextReporter(output: Output { _ in }))
        for target in targets {
            await monitor.update(State(url: target.url, name: target.name, status: "200 OK", code: 200, health: .up))
        }
        let source = MetricsSource()
        source.serve(monitor: monitor, targets: targets, settings: Settings())
        // Nothing is probed here: the shared client is never used.
        try await Self.withServer(source: source, metrics: EngineMetrics(), prober: HTTPProber(client: .shared)) {
            base in
            // As Prometheus asks.
            let zipped = try await fetchBytes(base + "/metrics", headers: [("Accept-Encoding", "gzip")])
            #expect(zipped.status == 200)
            #expect(zipped.headers["content-encoding"] == "gzip")
            #expect(zipped.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            #expect(zipped.body.starts(with: [0x1F, 0x8B]), "a gzip member's magic bytes")
            let samples = try await parsePrometheus(bytes: zipped.body, gzipped: true)
            #expect(samples.filter { $0.name == "probe_success" }.count == 200)

            let plain = try await fetchBytes(base + "/metrics")
            #expect(plain.headers["content-encoding"] == nil)
            #expect(zipped.body.count * 5 < plain.body.count, "\(zipped.body.count) of \(plain.body.count) bytes")
            #expect(try await parsePrometheus(bytes: plain.body, gzipped: false).count == samples.count)
            // Refused with q=0, or asked only for another coding: plain text.
            for refusal in ["gzip;q=0", "br", "identity", "*;q=0"] {
                let answer = try await fetchBytes(base + "/metrics", headers: [("Accept-Encoding", refusal)])
                #expect(answer.headers["content-encoding"] == nil, "Accept-Encoding: \(refusal)")
            }
            for consent in ["deflate, gzip;q=0.5", "*", "GZIP"] {
                let answer = try await fetchBytes(base + "/metrics", headers: [("Accept-Encoding", consent)])
                #expect(answer.headers["content-encoding"] == "gzip", "Accept-Encoding: \(consent)")
            }
        }
    }

    @Test func alerts_areCountedBySinkAndResult_andTheQueueLengthIsServed() async throws {
        let receiver = Receiver()
        try await receiver.run { hooks in
            let metrics = EngineMetrics()
            var configuration = AlertDispatcher<ContinuousClock>.Configuration()
            configuration.attempts = 1
            configuration.timeout = .seconds(5)
            configuration.queueLimit = 4
            var logger = Logger(label: "alerts")
            logger.logLevel = .critical
            let dispatcher = AlertDispatcher(
                configuration: configuration, transport: SystemAlertTransport(client: .shared),
                clock: ContinuousClock(),
                logger: logger, observer: metrics)
            let dead = "http://127.0.0.1:\(try closedPort())/hook"
            // Five alerts before the dispatcher runs, into a queue of four: the oldest is dropped.
            dispatcher.enqueue(.post(url: hooks + "/hook", body: [], headers: []))
            dispatcher.enqueue(.post(url: hooks + "/hook", body: [], headers: []))
            dispatcher.enqueue(.post(url: dead, body: [], headers: []))
            dispatcher.enqueue(.exec(argv: ["true"]))
            dispatcher.enqueue(.exec(argv: ["false"]))

            let source = MetricsSource()
            source.serve(
                monitor: StateMonitor(urls: [], reporter: TextReporter(output: Output { _ in })), targets: [],
                settings: Settings())
            try await Self.withServer(source: source, metrics: metrics, prober: HTTPProber(client: .shared)) { base in
                func scrape() async throws -> [ParsedSample] {
                    try await parsePrometheus(try await fetch(base + "/metrics").body)
                }
                func alerts(_ samples: [ParsedSample], _ sink: String, _ result: String) -> Double? {
                    samples.first {
                        $0.name == "urlpoll_alerts_total" && $0.labels == ["sink": sink, "result": result]
                    }?.value
                }
                let waiting = try await scrape()
                #expect(waiting.first { $0.name == "urlpoll_alert_queue_length" }?.value == 4)
                #expect(alerts(waiting, "post", "dropped") == 1)
                #expect(alerts(waiting, "post", "delivered") == 0, "every series exists from the start")
                #expect(waiting.first { $0.name == "urlpoll_alerts_total" }?.type == "counter")

                let delivering = Task { await dispatcher.run() }
                var done: [ParsedSample] = []
                for _ in 0..<500 {
                    done = try await scrape()
                    if done.first(where: { $0.name == "urlpoll_alert_queue_length" })?.value == 0 { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(done.first { $0.name == "urlpoll_alert_queue_length" }?.value == 0)
                #expect(alerts(done, "post", "delivered") == 1)
                #expect(alerts(done, "post", "failed") == 1)
                #expect(alerts(done, "post", "dropped") == 1)
                #expect(alerts(done, "exec", "delivered") == 1)
                #expect(alerts(done, "exec", "failed") == 1)
                #expect(alerts(done, "exec", "dropped") == 0)
                #expect(receiver.all.count == 1)
                dispatcher.finish()
                await delivering.value
            }
        }
    }

    @Test func scrape_withTheFullSet_givesATLSPollsVersion_andTheDefaultSetDoesNot() async throws {
        let ca = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 10 * 86_400, issuer: ca)
        let server = try await TLSServer(chain: [leaf])
        var target = Target(url: server.url, timeout: .seconds(2))
        target.tls = TLSOptions(roots: [ca.certificate], certExpiryDays: 14)
        let monitor = StateMonitor(urls: [target.url], reporter: TextReporter(output: Output { _ in }))
        // Only a tls:// URL: the HTTP prober's client is never used.
        let prober = try SchemeProber(http: HTTPProber(client: .shared), group: MultiThreadedEventLoopGroup.singleton)
        let pool = PollerPool(
            settings: Settings(), targets: [target], prober: prober, policy: LinearBackoff(), monitor: monitor,
            clock: ContinuousClock())
        _ = await pool.runOnce()
        let source = MetricsSource()
        for set in MetricSet.allCases {
            var settings = Settings()
            settings.metrics = set
            source.serve(monitor: monitor, targets: [target], settings: settings)
            try await Self.withServer(source: source, metrics: EngineMetrics(), prober: prober) { base in
                let samples = try await parsePrometheus(try await fetch(base + "/metrics").body)
                func value(_ name: String) -> Double? { samples.first { $0.name == name }?.value }
                // Degraded (within cert_expiry) is still a success, as a probe.
                #expect(value("probe_success") == 1)
                #expect(samples.first { $0.name == "urlpoll_state" && $0.labels["state"] == "degraded" }?.value == 1)
                let expiry = try #require(value("probe_ssl_earliest_cert_expiry"))
                #expect(abs(expiry - leaf.certificate.notValidAfter.timeIntervalSince1970) < 1)
                let version = samples.first { $0.name == "probe_tls_version_info" }
                #expect((version?.labels["version"] == "TLS 1.3") == (set == .full), "\(set)")
            }
        }
        try await server.stop()
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
