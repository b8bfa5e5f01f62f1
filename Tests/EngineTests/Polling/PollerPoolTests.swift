import Engine
import Logging
import Synchronization
import Testing

/// The seed's loop with a manual clock and a scripted prober: no network, no real sleeps. Each test awaits
/// the sleeps the engine schedules, which both synchronises it and asserts the backoff.
@Suite(.timeLimit(.minutes(2))) struct PollerPoolTests {
    /// Settings with a status interval no test reaches, so the only sleeps seen are Sleep's.
    static func settings(pollers: Int = 1) -> Settings {
        var settings = Settings()
        settings.pollers = pollers
        settings.pollInterval = .seconds(60)
        settings.errorBackoff = .seconds(10)
        settings.statusInterval = .seconds(1_000_000)
        return settings
    }

    /// Runs `body` with the pool running, then stops the pool and checks that it left no sleeper behind.
    static func withRunning<C: Clock>(
        _ pool: PollerPool<C>, clock: ManualClock, _ body: (inout AsyncStream<Duration>.Iterator) async throws -> Void
    ) async throws where C.Duration == Duration {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            var sleeps = clock.sleeps.makeAsyncIterator()
            try await body(&sleeps)
            group.cancelAll()
        }
        #expect(clock.pendingSleeps == 0)
    }

    /// How many polls of `url` the monitor has heard of (each made, its finish time taken, so its Sleep is
    /// known).
    static func polls(of url: String, by monitor: StateMonitor) async -> Int {
        await monitor.snapshot().first { $0.url == url }?.polls ?? 0
    }

    /// Whether the monitor hears of the `count`th poll of `url` within 5 s.
    static func eventuallyPolled(_ url: String, _ count: Int, by monitor: StateMonitor) async -> Bool {
        await eventually(checking: { await Self.polls(of: url, by: monitor) == count })
    }

    /// The next sleep that is not the monitor's tick.
    static func nextSleep(_ sleeps: inout AsyncStream<Duration>.Iterator) async -> Duration? {
        while let sleep = await sleeps.next() {
            if sleep != .seconds(1_000_000) { return sleep }
        }
        return nil
    }

    @Test func sleep_afterFailures_addsErrorBackoff_andResetsOnSuccess() async throws {
        // Given: a URL that fails twice (refused, then a 500), then succeeds.
        let clock = ManualClock()
        let url = "http://127.0.0.1:9/"
        let prober = ScriptedProber([url: [.failed(.refused), .status(500), .status(200)]])
        let monitor = StateMonitor(urls: [url], reporter: RecordingReporter())
        let sut = PollerPool(
            settings: Self.settings(), targets: [Target(url: url)], prober: prober, policy: LinearBackoff(),
            monitor: monitor, clock: clock)

        try await Self.withRunning(sut, clock: clock) { sleeps in
            // Then: poll_interval + error_backoff × 1, × 2, then poll_interval.
            #expect(await Self.nextSleep(&sleeps) == .seconds(70))
            clock.advance(by: .seconds(70))
            #expect(await Self.nextSleep(&sleeps) == .seconds(80))
            clock.advance(by: .seconds(80))
            #expect(await Self.nextSleep(&sleeps) == .seconds(60))
        }
        #expect(prober.polls(of: url) == 3)
        let state = try #require(await monitor.snapshot().first)
        #expect(state.status == "200 OK")
        #expect(state.errorCount == 0)
        #expect(state.polls == 3)
    }

    @Test func sleep_whenScriptDefinesBackoff_waitsWhatTheHookReturns_andPerURLHookWins() async throws {
        // Given: a global backoff and one URL with its own.
        let (host, _) = try loadHost(
            """
            urls = {
              "http://127.0.0.1:9/a",
              { url = "http://127.0.0.1:9/b", backoff = function(r) return 100 + r.error_count end },
            }
            function backoff(r) return r.interval / 2 + r.error_count * 3 end
            """)
        let clock = ManualClock()
        let (a, b) = ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
        let tick = Duration.milliseconds(10)  // the Sleep's resolution
        let prober = ScriptedProber([a: [.failed(.timeout), .status(200)], b: [.failed(.timeout), .status(200)]])
        let monitor = StateMonitor(urls: host.config.targets.map(\.url), reporter: RecordingReporter())
        let sut = PollerPool(
            settings: Self.settings(), targets: host.config.targets, prober: prober, policy: host.sleepPolicy,
            monitor: monitor, clock: clock)

        try await Self.withRunning(sut, clock: clock) { _ in
            #expect(await Self.eventuallyPolled(a, 1, by: monitor))
            #expect(await Self.eventuallyPolled(b, 1, by: monitor))
            // Then: a fails once → 30 + 3: polled at 33 s, not before.
            clock.advance(by: .seconds(33) - tick)
            #expect(await Self.polls(of: a, by: monitor) == 1)
            clock.advance(by: tick)
            #expect(await Self.eventuallyPolled(a, 2, by: monitor))
            // a succeeds → 30: polled at 63 s and 93 s; b fails once → its own hook, 101: polled at 101 s.
            clock.advance(by: .seconds(30))
            #expect(await Self.eventuallyPolled(a, 3, by: monitor))
            clock.advance(by: .seconds(30) - tick)
            #expect(await Self.polls(of: a, by: monitor) == 3)
            clock.advance(by: tick)
            #expect(await Self.eventuallyPolled(a, 4, by: monitor))
            clock.advance(by: .seconds(8) - tick)
            #expect(await Self.polls(of: b, by: monitor) == 1)
            clock.advance(by: tick)
            #expect(await Self.eventuallyPolled(b, 2, by: monitor))
            // b succeeds → its own hook, 100: polled at 201 s, not before.
            clock.advance(by: .seconds(100) - tick)
            #expect(await Self.eventuallyPolled(a, 5, by: monitor))
            #expect(await Self.polls(of: b, by: monitor) == 2)
            clock.advance(by: tick)
            #expect(await Self.eventuallyPolled(b, 3, by: monitor))
        }
    }

    @Test func sleep_whenBackoffRaises_usesTheDefault_logsFileLine_andKeepsPolling() async throws {
        // Given: a backoff hook that raises on every call.
        let (logger, log) = RecordingLogHandler.make()
        let (host, script) = try loadHost(
            """
            urls = { "http://127.0.0.1:9/" }
            function backoff(r)
              error("policy exploded")
            end
            """, logger: logger)
        let clock = ManualClock()
        let url = "http://127.0.0.1:9/"
        let prober = ScriptedProber([url: [.status(503), .status(200)]])
        let sut = PollerPool(
            settings: Self.settings(), targets: host.config.targets, prober: prober, policy: host.sleepPolicy,
            monitor: StateMonitor(urls: [url], reporter: RecordingReporter()), clock: clock)

        try await Self.withRunning(sut, clock: clock) { sleeps in
            // Then: the default policy decides each sleep, and polling goes on.
            #expect(await Self.nextSleep(&sleeps) == .seconds(70))
            clock.advance(by: .seconds(70))
            #expect(await Self.nextSleep(&sleeps) == .seconds(60))
        }
        #expect(prober.polls(of: url) == 2)
        #expect(log.all.contains { $0.hasPrefix("error: \(script.path):3: policy exploded") })
    }

    @Test(arguments: [
        ("return nil", "backoff returned nil"),
        ("return 0/0", "backoff returned number"),
        ("return -5", "backoff returned number -5"),
        ("return math.huge", "backoff returned number"),
        ("return 'soon'", "backoff returned string \"soon\""),
    ])
    func delay_whenBackoffReturnsABadValue_usesTheDefault_andNamesTheHook(body: String, message: String) async throws {
        // Given: a backoff that returns something that is not a sleep.
        let (logger, log) = RecordingLogHandler.make()
        let (sut, script) = try loadHost(
            """
            urls = { "http://127.0.0.1:9/" }
            backoff = function(r)
              \(body)
            end
            """, logger: logger)
        var resource = Resource(sut.config.targets[0])
        resource.record(.failed(.refused), at: 0)

        // When:
        let delay = await sut.delay(for: resource, settings: Self.settings())

        // Then: the default, and a message that points at the hook's definition.
        #expect(delay == .seconds(70))
        #expect(log.all.contains { $0.contains("\(script.path):2: \(message)") })
    }

    @Test func delay_whenBackoffIsAbsurd_isCappedAtOneDay() async throws {
        let (sut, _) = try loadHost(
            """
            urls = { "http://127.0.0.1:9/" }
            function backoff(r) return 1e12 end
            """)
        let delay = await sut.delay(for: Resource(sut.config.targets[0]), settings: Self.settings())
        #expect(delay == Backoff.maximum)
    }

    @Test func run_whenTheMonitorTicks_reportsEveryURLOnce_inURLOrder() async throws {
        // Given: three URLs listed out of order, all polled, and a 10 s status interval.
        let clock = ManualClock()
        let urls = ["http://127.0.0.1:9/c", "http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
        let prober = ScriptedProber(Dictionary(uniqueKeysWithValues: urls.map { ($0, [ProbeResult.status(200)]) }))
        let reporter = RecordingReporter()
        let recorder = StateRecorder()
        var settings = Self.settings(pollers: 2)
        settings.statusInterval = .seconds(10)
        let sut = PollerPool(
            settings: settings, targets: urls.map { Target(url: $0) }, prober: prober, policy: LinearBackoff(),
            monitor: StateMonitor(urls: urls, reporter: reporter, observers: [recorder]), clock: clock)
        var reports = reporter.reports.makeAsyncIterator()

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await sut.run() }
            // When: every URL has been polled, and the tick comes.
            var polls = recorder.polls.makeAsyncIterator()
            for _ in urls { _ = await polls.next() }
            clock.advance(by: .seconds(10))

            // Then: one report with each URL once, sorted.
            let report = try #require(await reports.next())
            #expect(report.map(\.url) == urls.sorted())
            #expect(report.allSatisfy { $0.status == "200 OK" && $0.ok && $0.polls == 1 })
            group.cancelAll()
        }
    }

    @Test func sleep_whenURLsFallDueTogether_theyShareOneSleep_andAreAllPolledAgain() async throws {
        // Given: three URLs polled at once, so all three fall due 60 s later.
        let clock = ManualClock()
        let urls = (1...3).map { "http://127.0.0.1:9/\($0)" }
        let prober = ScriptedProber(Dictionary(uniqueKeysWithValues: urls.map { ($0, [ProbeResult.status(200)]) }))
        let recorder = StateRecorder()
        let sut = PollerPool(
            settings: Self.settings(pollers: 3), targets: urls.map { Target(url: $0) }, prober: prober,
            policy: LinearBackoff(),
            monitor: StateMonitor(urls: urls, reporter: RecordingReporter(), observers: [recorder]),
            clock: clock)

        try await Self.withRunning(sut, clock: clock) { sleeps in
            var polls = recorder.polls.makeAsyncIterator()
            for _ in urls { _ = await polls.next() }
            // Then: one sleep of 60 s wakes all three.
            #expect(await Self.nextSleep(&sleeps) == .seconds(60))
            clock.advance(by: .seconds(60))
            for _ in urls { _ = await polls.next() }
            #expect(await Self.nextSleep(&sleeps) == .seconds(60))
        }
        #expect(urls.allSatisfy { prober.polls(of: $0) == 2 })
    }

    @Test func sleep_whenEveryURLSleepsInASlotOfItsOwn_oneSleepWaits_andEachIsPolledOnTime() async throws {
        // Given: 10,000 URLs, each with an interval 10 ms longer than the one before, so that after their
        // first polls each sleeps in a 10 ms slot of its own (started 1,000 a second, over 10 s).
        let clock = ManualClock()
        let targets = (0..<10_000).map { i in
            var target = Target(url: "http://127.0.0.1:9/\(i)")
            target.interval = .seconds(60) + .milliseconds(10 * i)
            return target
        }
        let prober = ScriptedProber(
            Dictionary(uniqueKeysWithValues: targets.map { ($0.url, [ProbeResult.status(200)]) }))
        let recorder = StateRecorder()
        let sut = PollerPool(
            settings: Self.settings(pollers: 8), targets: targets, prober: prober, policy: LinearBackoff(),
            monitor: StateMonitor(urls: targets.map(\.url), reporter: RecordingReporter(), observers: [recorder]),
            clock: clock)

        try await Self.withRunning(sut, clock: clock) { _ in
            var polls = recorder.polls.makeAsyncIterator()
            for second in 0..<10 {
                if second > 0 { clock.advance(by: .seconds(1)) }
                for _ in 0..<1_000 { _ = await polls.next() }
            }
            // Then: one Sleep waits for all 10,000 slots (beside the monitor's tick), not one per slot.
            // (10,000 Resources go through `complete` first: a loaded machine may take seconds.)
            #expect(
                await eventually(within: .seconds(30)) { clock.pendingSleeps == 2 }, "\(clock.pendingSleeps) sleepers")
            // When: the first slot comes (URL 0, polled at 0 s, every 60 s).
            clock.advance(by: .seconds(51) - .milliseconds(10))
            #expect(prober.polls(of: targets[0].url) == 1)
            clock.advance(by: .milliseconds(10))
            // Then: URL 0 is polled on time, and the Sleep waits for the next slot.
            let first = await polls.next()
            #expect(first?.url == targets[0].url)
            #expect(first?.lateness == .zero)
            #expect(await eventually { clock.pendingSleeps == 2 })
        }
    }

    /// Answers every URL at once but the gated one, whose first poll waits until the test opens the gate.
    final class GatedProber: Prober {
        let gated: String
        let gate: AsyncStream<Void>
        let open: AsyncStream<Void>.Continuation
        /// Whether no poll of the gated URL has begun.
        private let first = Mutex(true)

        init(gated: String) {
            self.gated = gated
            (self.gate, self.open) = AsyncStream.makeStream()
        }

        func probe(_ target: Target, settings: Settings) async -> ProbeResult {
            if target.url == self.gated,
                self.first.withLock({ first in
                    defer { first = false }; return first
                })
            {
                for await _ in self.gate { break }
            }
            return .status(200)
        }
    }

    @Test func sleep_whenAnEarlierSlotComesWhileItWaitsForALaterOne_wakesForTheEarlierOne() async throws {
        // Given: a every 100 s and b every 10 s; b's first poll is held until a sleeps.
        let clock = ManualClock()
        let (a, b) = ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
        var targets = [Target(url: a), Target(url: b)]
        targets[0].interval = .seconds(100)
        targets[1].interval = .seconds(10)
        let prober = GatedProber(gated: b)
        let monitor = StateMonitor(urls: [a, b], reporter: RecordingReporter())
        let sut = PollerPool(
            settings: Self.settings(pollers: 2), targets: targets, prober: prober, policy: LinearBackoff(),
            monitor: monitor, clock: clock)

        try await Self.withRunning(sut, clock: clock) { sleeps in
            // The Sleep waits for a's slot, 100 s away.
            #expect(await Self.nextSleep(&sleeps) == .seconds(100))
            // When: b's first poll ends, so b sleeps in a slot 10 s away.
            prober.open.yield()
            #expect(await Self.eventuallyPolled(b, 1, by: monitor))
            // Then: b is polled at 10 s and 20 s, a at 100 s.
            clock.advance(by: .seconds(10))
            #expect(await Self.eventuallyPolled(b, 2, by: monitor))
            clock.advance(by: .seconds(10))
            #expect(await Self.eventuallyPolled(b, 3, by: monitor))
            #expect(await Self.polls(of: a, by: monitor) == 1)
            for _ in 0..<8 { clock.advance(by: .seconds(10)) }
            #expect(await Self.eventuallyPolled(a, 2, by: monitor))
        }
    }

    @Test func runOnce_pollsEveryURLOnce_andReturnsStatesInURLOrder() async throws {
        let urls = ["http://127.0.0.1:9/b", "http://127.0.0.1:9/a"]
        let prober = ScriptedProber(["http://127.0.0.1:9/b": [.status(500)], "http://127.0.0.1:9/a": [.status(204)]])
        let sut = PollerPool(
            settings: Self.settings(pollers: 4), targets: urls.map { Target(url: $0) }, prober: prober,
            policy: LinearBackoff(), monitor: StateMonitor(urls: urls, reporter: RecordingReporter()),
            clock: ManualClock())

        let states = await sut.runOnce()

        #expect(states.map(\.url) == ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"])
        #expect(states.map(\.status) == ["204 No Content", "500 Internal Server Error"])
        #expect(states.map(\.ok) == [true, false])
        #expect(states[1].error == "status")
        #expect(states[1].detail == "status 500 is not in expect 200-399")
    }
}
