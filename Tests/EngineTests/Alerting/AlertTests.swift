import AsyncHTTPClient
import Engine
import Logging
import NIOSSL
import Synchronization
import Testing

/// on_change, on_result and check against the manual clock; alert delivery against a real receiver.
@Suite(.timeLimit(.minutes(2))) struct AlertTests {
    static let url = "http://127.0.0.1:9/"

    /// Polls `count` times, advancing the manual clock through each Sleep, and returns the sleeps seen.
    static func pollTimes(
        _ count: Int, pool: PollerPool<ManualClock>, clock: ManualClock
    ) async throws -> [Duration] {
        var seen: [Duration] = []
        try await PollerPoolTests.withRunning(pool, clock: clock) { sleeps in
            while seen.count < count, let sleep = await PollerPoolTests.nextSleep(&sleeps) {
                seen.append(sleep)
                if seen.count < count { clock.advance(by: sleep) }
            }
        }
        return seen
    }

    static func pool(
        _ host: ScriptHost, prober: ScriptedProber, clock: ManualClock, observers: [any StateObserver] = []
    ) -> (PollerPool<ManualClock>, StateMonitor) {
        let monitor = StateMonitor(
            urls: host.config.targets.map(\.url), reporter: RecordingReporter(),
            observers: observers + [host.observer].compactMap { $0 })
        let pool = PollerPool(
            settings: PollerPoolTests.settings(), targets: host.config.targets, prober: prober,
            policy: host.sleepPolicy, checker: host.checker, monitor: monitor, clock: clock)
        return (pool, monitor)
    }

    @Test func onChange_firesOncePerTransition_andNeverForAnUnchangedStatus() async throws {
        // Given: six polls with four distinct runs of status.
        let (logger, log) = RecordingLogHandler.make()
        let (host, _) = try loadHost(
            """
            urls = { "\(Self.url)" }
            function on_change(s, prev)
              urlpoll.log("info", "change", prev and prev.status or "nil", "->", s.status, s.error_count)
            end
            """, logger: logger)
        let prober = ScriptedProber([
            Self.url: [.status(200), .status(200), .status(500), .status(500), .failed(.timeout), .status(200)]
        ])
        let clock = ManualClock()
        let (pool, _) = Self.pool(host, prober: prober, clock: clock)

        // When:
        _ = try await Self.pollTimes(6, pool: pool, clock: clock)

        // Then:
        #expect(
            log.all == [
                "info: change nil -> 200 OK 0",
                "info: change 200 OK -> 500 Internal Server Error 1",
                "info: change 500 Internal Server Error -> timeout 3",
                "info: change timeout -> 200 OK 0",
            ])
    }

    @Test func onResult_seesEveryPoll_soAThresholdFiresOncePerStreak() async throws {
        let (logger, log) = RecordingLogHandler.make()
        let (host, _) = try loadHost(
            """
            urls = { "\(Self.url)" }
            function on_result(s, prev)
              if s.error_count == 3 then urlpoll.log("warning", "three in a row:", s.status) end
            end
            """, logger: logger)
        let prober = ScriptedProber([
            Self.url: [.status(500), .status(500), .status(502), .status(500), .status(500), .status(200)]
        ])
        let clock = ManualClock()
        let (pool, _) = Self.pool(host, prober: prober, clock: clock)

        _ = try await Self.pollTimes(6, pool: pool, clock: clock)

        #expect(log.all == ["warning: three in a row: 502 Bad Gateway"])
        #expect(prober.polls(of: Self.url) == 6)
    }

    @Test func check_drivesTheStateTheErrorCountAndTheBackoff() async throws {
        // Given: a check that reads the body and the latency.
        let (host, _) = try loadHost(
            """
            urls = { "\(Self.url)" }
            function check(res)
              if res.body:find("maintenance") then return "down", "in maintenance" end
              if res.latency > 1 then return "degraded", "slow" end
              if res.headers["x-broken"] then return false end
              return "up"
            end
            """)
        #expect(host.config.targets[0].captureBody)
        let prober = ScriptedProber([
            Self.url: [
                .status(200, body: "<h1>maintenance</h1>"), .status(200, latency: .seconds(2), body: "ok"),
                .status(200, headers: [Header("X-Broken", "1")], body: "ok"), .status(200, body: "ok"),
            ]
        ])
        let clock = ManualClock()
        let recorder = StateRecorder()
        let (pool, _) = Self.pool(host, prober: prober, clock: clock, observers: [recorder])

        // When:
        let sleeps = try await Self.pollTimes(4, pool: pool, clock: clock)

        // Then: down counts as a failure (backoff grows), degraded does not.
        #expect(sleeps == [.seconds(70), .seconds(60), .seconds(70), .seconds(60)])
        let states = recorder.states
        #expect(states.map(\.health) == [.down, .degraded, .down, .up])
        #expect(states.map(\.errorCount) == [1, 0, 1, 0])
        #expect(states.map(\.error) == ["check", "check", "check", nil])
        #expect(states.map(\.detail) == ["in maintenance", "slow", "check returned down", nil])
        #expect(states.allSatisfy { $0.status == "200 OK" })
    }

    @Test func check_whenItReturnsGarbage_fallsBackToExpect_andLogsTheHook() async throws {
        let (logger, log) = RecordingLogHandler.make()
        let (host, script) = try loadHost(
            """
            urls = { "\(Self.url)" }
            function check(res)
              return "fine"
            end
            """, logger: logger)
        let verdict = await host.check(host.config.targets[0], .status(503, body: ""))
        #expect(verdict == nil)
        #expect(
            log.all == [
                "error: \(script.path):2: check returned string \"fine\"; expected \"up\", \"degraded\" or \"down\" "
                    + "(and an optional message) (judging by expect instead)"
            ])
    }

    @Test func json_roundTripsThroughEncodeAndDecode() throws {
        let (host, _) = try loadHost(
            """
            local doc = urlpoll.json.decode('{"a":[1,2.5,"x",true,null],"b":{"c":"d"},"e":"\\\\u00e9\\\\n"}')
            assert(doc.a[1] == 1 and doc.a[2] == 2.5 and doc.a[3] == "x" and doc.a[4] == true and #doc.a == 4)
            assert(doc.b.c == "d" and doc.e == "é\\n")
            local text = urlpoll.json.encode({ z = 1, a = { 1, 2, { k = "v" } }, s = 'q"\\n', f = 0.5, t = true })
            assert(text == '{"a":[1,2,{"k":"v"}],"f":0.5,"s":"q\\\\"\\\\n","t":true,"z":1}', text)
            local ok, err = pcall(urlpoll.json.decode, "{nope")
            assert(not ok and err:find("invalid JSON"), err)
            local t = {} t.self = t
            ok, err = pcall(urlpoll.json.encode, t)
            assert(not ok and err:find("nesting deeper than 64"), err)
            urls = { "\(Self.url)" }
            """)
        #expect(host.config.targets.count == 1)
    }

    @Test func post_and_exec_whenArgumentsAreWrong_raiseAtTheCallingLine() throws {
        let (error, script) = try LuaRuntimeTests.loadError(
            """
            assert(not pcall(urlpoll.post, "ftp://x/", "body"))
            assert(not pcall(urlpoll.exec, {}))
            urlpoll.post(42)
            """)
        #expect(error.message == "\(script.path):3: bad argument #1 to 'post' (URL string expected, got number 42)")
    }

    // MARK: Delivery

    static func dispatcher(
        clock: ManualClock, logger: Logger, timeout: Duration = .seconds(10)
    ) -> (AlertDispatcher<ManualClock>, HTTPClient) {
        let client = HTTPProber.makeClient(pollers: 2)
        var configuration = AlertDispatcher<ManualClock>.Configuration()
        configuration.timeout = timeout
        return (
            AlertDispatcher(
                configuration: configuration, transport: SystemAlertTransport(client: client), clock: clock,
                logger: logger),
            client
        )
    }

    @Test func dispatcher_whenTheReceiverFails_retriesWithBackoff_andLogsTheFinalFailure() async throws {
        let receiver = Receiver()
        try await receiver.run { base in
            let clock = ManualClock()
            let (logger, log) = RecordingLogHandler.make()
            let (sut, client) = Self.dispatcher(clock: clock, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await sut.run() }
                sut.enqueue(.post(url: base + "/fail", body: Array("down".utf8), headers: []))
                sut.enqueue(.post(url: base + "/flaky", body: Array("flaky".utf8), headers: []))
                sut.enqueue(.post(url: "http://127.0.0.1:\(try closedPort())/hook", body: [], headers: []))

                // Then: each failed attempt waits 1, 2, then 4 s before the next.
                var sleeps = clock.sleeps.makeAsyncIterator()
                var waits: [Duration] = []
                while waits.count < 8, let wait = await sleeps.next() {
                    waits.append(wait)
                    clock.advance(by: wait)
                }
                #expect(waits.sorted() == [1, 1, 1, 2, 2, 2, 4, 4].map { Duration.seconds($0) })
                sut.finish()
                try await group.waitForAll()
            }
            try await client.shutdown()
            #expect(receiver.all.filter { $0.path == "/fail" }.count == 4)
            #expect(receiver.all.filter { $0.path == "/flaky" }.count == 3)
            let errors = log.all.filter { $0.hasPrefix("error:") }.sorted()
            #expect(errors.count == 2)
            #expect(
                errors.contains(
                    "error: alert not delivered after 4 attempts: the receiver answered 500 Internal Server Error"))
            // In words, as a poll's detail says it: never NIO's garbled "connection reset (error set): …".
            #expect(
                errors.contains(
                    "error: alert not delivered after 4 attempts: the server refused the connection: Connection refused "
                        + "(errno 111)"), "\(errors)")
        }
    }

    /// A dead receiver's alerts wait for their retries without holding the delivery slots (4), so alerts to
    /// a working receiver go out at once. Before, 4 failing alerts kept every slot through their 1, 2, 4 s
    /// waits and the live receiver's alerts waited behind them.
    @Test func dispatcher_whenOneReceiverIsDead_deliversToTheLiveOneWithoutWaitingOnItsRetries() async throws {
        let receiver = Receiver()
        try await receiver.run { base in
            let clock = ManualClock()
            let (logger, _) = RecordingLogHandler.make()
            let (sut, client) = Self.dispatcher(clock: clock, logger: logger)
            let dead = "http://127.0.0.1:\(try closedPort())/hook"
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await sut.run() }
                // Given: more alerts to a dead receiver than there are slots, the first 4 failed and waiting.
                for _ in 1...8 { sut.enqueue(.post(url: dead, body: [], headers: [])) }
                var sleeps = clock.sleeps.makeAsyncIterator()
                for _ in 1...4 { _ = await sleeps.next() }

                // When: two alerts for a live receiver come, and the clock stands still (no retry is due).
                sut.enqueue(.post(url: base + "/hook", body: Array("a".utf8), headers: []))
                sut.enqueue(.post(url: base + "/hook", body: Array("b".utf8), headers: []))

                // Then: both are delivered, and the dead receiver's alerts all wait for their retries.
                #expect(await eventually(within: .seconds(10)) { receiver.all.count == 2 })
                #expect(Set(receiver.all.map(\.body)) == ["a", "b"])
                #expect(await eventually { clock.pendingSleeps == 8 })
                #expect(clock.now == ManualClock.Instant(offset: .zero))
                group.cancelAll()
            }
            try await client.shutdown()
        }
    }

    /// A receiver that takes connections but never answers holds at most its own share of the delivery slots
    /// (``AlertDispatcher/Configuration/perReceiver``), so alerts to a working receiver still go out at once.
    /// Before, its hung attempts held all 4 shared slots for their whole timeout and the live receiver's
    /// alerts waited behind them (issue 11's new-user test: 3 delivered, then 7 s and 18 s late, then none).
    @Test func dispatcher_whenOneReceiverHangs_deliversToTheLiveOneAtOnce() async throws {
        let receiver = Receiver()
        let hung = try HangingListener()
        try await receiver.run { base in
            let clock = ManualClock()
            let (logger, _) = RecordingLogHandler.make()
            // The hung attempts outlast the test: only the per-receiver limit can free the slots.
            let (sut, client) = Self.dispatcher(clock: clock, logger: logger, timeout: .seconds(600))
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await sut.run() }
                // Given: more alerts to the hung receiver than there are slots, interleaved with a live one's.
                for i in 1...8 {
                    sut.enqueue(.post(url: hung.url + "/hook", body: [], headers: []))
                    sut.enqueue(.post(url: base + "/hook", body: Array("\(i)".utf8), headers: []))
                }
                // Then: every alert to the live receiver arrives, without waiting on the hung attempts.
                #expect(await eventually(within: .seconds(10)) { receiver.all.count == 8 })
                #expect(Set(receiver.all.map(\.body)) == Set((1...8).map { "\($0)" }))
                group.cancelAll()
            }
            try await client.shutdown()
        }
    }

    /// Webhooks refuse TLS 1.0 and 1.1 as polls and hooks do (RFC 8996), and the failure says why. Before,
    /// the webhook client took TLS 1.1 and failed later, at the certificate.
    @Test func transport_whenTheReceiverSpeaksOnlyTLS11_failsSayingProtocolVersion() async throws {
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: nil)
        let server = try await TLSServer(chain: [leaf], maximumVersion: .tlsv11)
        let client = HTTPProber.makeClient(pollers: 4, followsRedirects: true)
        let transport = SystemAlertTransport(client: client)

        var message = ""
        do {
            try await transport.deliver(.post(url: server.https + "/hook", body: [], headers: []), timeout: .seconds(5))
        } catch {
            message = "\(error)"
        }
        try await client.shutdown()
        try await server.stop()

        #expect(message.hasPrefix("protocol version: "), "\(message)")
    }

    @Test func dispatcher_whenTheQueueOverflows_dropsTheOldest_andLogsOneLineWithACount() async throws {
        let receiver = Receiver()
        try await receiver.run { base in
            let clock = ManualClock()
            let (logger, log) = RecordingLogHandler.make()
            let client = HTTPProber.makeClient(pollers: 2)
            var configuration = AlertDispatcher<ManualClock>.Configuration()
            configuration.queueLimit = 3
            let sut = AlertDispatcher(
                configuration: configuration, transport: SystemAlertTransport(client: client), clock: clock,
                logger: logger)

            // When: ten alerts are raised while nothing is delivered (the last one a recovery).
            for i in 1...10 {
                sut.enqueue(.post(url: base + "/hook", body: Array("\(i)".utf8), headers: []))
            }
            sut.finish()
            await sut.run()
            try await client.shutdown()

            // Then: the newest three are delivered, and one line says seven were dropped... at the first drop.
            #expect(receiver.all.map(\.body).sorted() == ["10", "8", "9"])
            let overflow = log.all.filter { $0.contains("the queue is full") }
            #expect(
                overflow == [
                    "error: 1 alert not delivered: the queue is full (3 waiting), so the oldest are dropped for the newest"
                ])
        }
    }

    @Test func dispatcher_whenShutdownComesFirst_reportsWhatWasNotDelivered() async throws {
        let receiver = try HangingListener()
        let clock = ManualClock()
        let (logger, log) = RecordingLogHandler.make()
        let (sut, client) = Self.dispatcher(clock: clock, logger: logger, timeout: .milliseconds(200))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await sut.run() }
            sut.enqueue(.post(url: receiver.url + "/hook", body: [], headers: []))
            // When: shutdown begins while the receiver hangs, and the grace runs out before the retry.
            sut.finish()
            var sleeps = clock.sleeps.makeAsyncIterator()
            _ = await sleeps.next()
            clock.advance(by: .seconds(60))
            try await group.waitForAll()
        }
        try await client.shutdown()
        // Then: the alert is reported as undelivered, not dropped silently.
        #expect(log.all.contains { $0.hasPrefix("error: alert not delivered before shutdown") })
    }

    @Test func polling_whenTheWebhookHangs_keepsItsSchedule() async throws {
        let receiver = try HangingListener()
        let (logger, _) = RecordingLogHandler.make()
        let clock = ManualClock()
        let dispatcherClock = ManualClock()
        let (dispatcher, client) = Self.dispatcher(clock: dispatcherClock, logger: logger)
        let script = try TemporaryScript(
            """
            urls = { "\(Self.url)" }
            function on_result(s) urlpoll.post("\(receiver.url)/hook", { text = s.status }) end
            """)
        let host = try ScriptHost(path: script.path, alerts: dispatcher, logger: logger)
        let prober = ScriptedProber([Self.url: [.status(500), .status(500), .status(500), .status(200)]])
        let (pool, _) = Self.pool(host, prober: prober, clock: clock)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await dispatcher.run() }
            // When: every poll posts to a receiver that never answers.
            let sleeps = try await Self.pollTimes(4, pool: pool, clock: clock)
            // Then: the polls happened on the seed's schedule all the same; no delivery finished or retried.
            #expect(sleeps == [.seconds(70), .seconds(80), .seconds(90), .seconds(60)])
            #expect(dispatcherClock.pendingSleeps == 0)
            group.cancelAll()
        }
        try await client.shutdown()
    }
}
