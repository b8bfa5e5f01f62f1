import Foundation
import Testing

/// `run --listen` and the `listen` setting, on the built binary.
@Suite(.timeLimit(.minutes(2))) struct ListenTests {
    /// The port the child logged that it listens on.
    static func listeningPort(_ process: CLIProcess) async throws -> Int {
        try await process.waitForStderr("listening on 127.0.0.1:")
        let line = try #require(process.stderr.split(separator: "\n").first { $0.contains("listening on 127.0.0.1:") })
        let digits = line.split(separator: "listening on 127.0.0.1:").last?.prefix { $0.isNumber } ?? ""
        return try #require(Int(digits))
    }

    @Test func listen_onAPortAlreadyInUse_exits2NamingTheAddress_beforeAnyPoll() async throws {
        let (fd, port) = try bindLoopback(listen: 1)
        defer { close(fd) }
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:\(try closedPort())/\" }")
        let result = try await CLIProcess.run(["run", script.path, "--listen", "127.0.0.1:\(port)"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("urlpoll: cannot listen on 127.0.0.1:\(port): address already in use\n"))
        #expect(!result.stdout.contains("Current state"))
    }

    @Test func listen_thatIsNotAnAddress_exits2WithTheReason() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:1/\" }")
        let flag = try await CLIProcess.run(["run", script.path, "--listen", "9464"])
        #expect(flag.status == 2)
        #expect(flag.stderr.contains("urlpoll: --listen: \"9464\" is not HOST:PORT (for example 127.0.0.1:9464)"))

        let setting = try TemporaryScript("urls = { \"http://127.0.0.1:1/\" }\nlisten = \"127.0.0.1:99999\"\n")
        let loaded = try await CLIProcess.run(["run", setting.path])
        #expect(loaded.status == 2)
        #expect(
            loaded.stderr.contains(
                "\(setting.path):2: setting 'listen': \"127.0.0.1:99999\": the port must be a number from 0 to 65535"))
    }

    @Test func listen_onAHostThatDoesNotResolve_exits2SayingSoInWords() async throws {
        // A label of 64 bytes is longer than DNS allows (RFC 1035 §2.3.4), so getaddrinfo fails without
        // sending a query: nothing leaves the machine.
        let host = String(repeating: "a", count: 64) + ".test"
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:\(try closedPort())/\" }")
        let result = try await CLIProcess.run(["run", script.path, "--listen", "\(host):9464"])
        #expect(result.status == 2)
        #expect(
            result.stderr.contains(
                "urlpoll: cannot listen on \(host):9464: \"\(host)\" is not an address of this machine, nor a name "
                    + "that resolves to one\n"), "\(result.stderr)")
        #expect(!result.stderr.contains("SocketAddressError"))
    }

    /// A `report` hook held on a request past `status_interval`, in the real binary: the ticks meanwhile
    /// skip their report, the log says so once, and `/metrics` counts them.
    @Test func reportWaitingPastTheStatusInterval_logsTheSkippedTick_andCountsItInMetrics() async throws {
        let server = HookServer()
        try await server.run { base in
            let script = try TemporaryScript(
                """
                status_interval = 0.1
                timeout = 60
                urls = { "\(base)/json" }
                function report(s) urlpoll.http.get("\(base)/slow") end
                """)
            let process = try CLIProcess(["run", script.path, "--listen", "127.0.0.1:0"])
            let port = try await Self.listeningPort(process)
            var arrivals = server.arrivals.makeAsyncIterator()
            #expect(await arrivals.next() == "/slow")

            // When: the report waits on the server for more than one status interval.
            try await process.waitForStderr("a tick's report was skipped (1 so far): the previous tick's report ")

            // Then: the log says why, once, and /metrics counts the skipped ticks.
            #expect(process.stderr.contains("still under way after status_interval (0.1 s)"), "\(process.stderr)")
            #expect(process.stderr.components(separatedBy: "report was skipped").count == 2, "\(process.stderr)")
            let samples = try await parsePrometheus(try await fetch("http://127.0.0.1:\(port)/metrics").body)
            let skipped = try #require(samples.first { $0.name == "urlpoll_report_ticks_skipped_total" })
            #expect(skipped.value >= 1)
            server.release()
            process.signal(SIGTERM)
            #expect(await process.wait() == 0)
        }
    }

    @Test func prometheusScript_servesItsURLsLabels_inTextARealParserReads() async throws {
        try await withDemoSite { (base) async throws in
            let process = try CLIProcess([
                "run", "scripts/prometheus.lua", "--listen", "127.0.0.1:0", "--status-interval", "3600", "--", base,
            ])
            let port = try await Self.listeningPort(process)
            // /healthz turns 200 once every URL has been polled once.
            let deadline = ContinuousClock.now + .seconds(30)
            while try await fetch("http://127.0.0.1:\(port)/healthz").status != 200 {
                guard ContinuousClock.now < deadline else {
                    throw CLIError(message: "never healthy: \(process.stderr)")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            let samples = try await parsePrometheus(try await fetch("http://127.0.0.1:\(port)/metrics").body)
            let success = samples.filter { $0.name == "probe_success" }
            #expect(
                Set(success.map { $0.labels }) == [
                    ["instance": base + "/healthy", "name": "home page", "team": "web", "tier": "1"],
                    ["instance": base + "/health.json", "name": base + "/health.json", "team": "db", "tier": "2"],
                    ["instance": base + "/failing", "name": base + "/failing", "team": "web", "tier": "3"],
                ])
            #expect(success.first { $0.labels["instance"] == base + "/failing" }?.value == 0)
            #expect(success.first { $0.labels["instance"] == base + "/healthy" }?.value == 1)
            #expect(samples.first { $0.name == "urlpoll_urls" }?.value == 3)
            let probe = try await fetch("http://127.0.0.1:\(port)/probe?target=\(base)/healthy&module=http_2xx")
            #expect(try await parsePrometheus(probe.body).first { $0.name == "probe_success" }?.value == 1)
            process.signal(SIGTERM)
            #expect(await process.wait() == 0)
        }
    }

    @Test func notifySocket_getsReadyOnceListening_reloadingAndReadyOnHUP_andStoppingOnTERM() async throws {
        let notify = try NotifySocket()
        let script = try TemporaryScript(
            "urls = { \"http://127.0.0.1:\(try closedPort())/\" }\nstatus_interval = 3600\n")
        let process = try CLIProcess(
            ["run", script.path, "--listen", "127.0.0.1:0"], environment: ["NOTIFY_SOCKET": notify.path])
        #expect(await notify.receive() == "READY=1")
        // READY=1 came after the listener was bound: it answers.
        let port = try await Self.listeningPort(process)
        #expect(try await fetch("http://127.0.0.1:\(port)/metrics").status == 200)

        process.signal(SIGHUP)
        let reloading = try #require(await notify.receive())
        #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        #expect(Int(reloading.split(separator: "=").last ?? "") != nil)
        #expect(await notify.receive() == "READY=1")
        try await process.waitForStderr("reloaded")
        #expect(
            try await fetch("http://127.0.0.1:\(port)/metrics").body.contains(
                "urlpoll_reloads_total{result=\"success\"} 1"))

        process.signal(SIGTERM)
        #expect(await notify.receive() == "STOPPING=1")
        #expect(await process.wait() == 0)
    }
}
