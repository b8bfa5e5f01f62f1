import Engine
import Foundation
import Logging
import Testing

/// Reload and restart: the new script is validated first, kept URLs keep their state, removed ones go.
@Suite(.timeLimit(.minutes(2))) struct ReloadTests {
    static let a = "http://127.0.0.1:9/a"
    static let b = "http://127.0.0.1:9/b"
    static let c = "http://127.0.0.1:9/c"

    static func pool(
        _ host: ScriptHost, prober: ScriptedProber, clock: ManualClock, recorder: StateRecorder? = nil
    ) -> PollerPool<ManualClock> {
        let monitor = StateMonitor(
            urls: host.config.targets.map(\.url), reporter: RecordingReporter(),
            observers: [host.observer, recorder].compactMap { $0 })
        return PollerPool(
            settings: PollerPoolTests.settings(pollers: 2), targets: host.config.targets, prober: prober,
            policy: host.sleepPolicy, checker: host.checker, monitor: monitor, clock: clock)
    }

    @Test func reload_changesURLsAndBackoff_andAFailingURLKeepsItsErrorCount() async throws {
        // Given: a script polling a (failing) and b (every 5000 s, so only a's sleeps come due).
        let (logger, log) = RecordingLogHandler.make()
        let script = try TemporaryScript("urls = { \"\(Self.a)\", { url = \"\(Self.b)\", interval = 5000 } }\n")
        let prober = ScriptedProber([Self.a: [.status(500)], Self.b: [.status(200)], Self.c: [.status(200)]])
        let clock = ManualClock()
        let recorder = StateRecorder()
        let first = try ScriptHost(path: script.path, logger: logger)
        let (reloads, requestReload) = AsyncStream<Void>.makeStream()
        let (rebuilds, rebuilt) = AsyncStream<Bool>.makeStream()
        let sut = ReloadingService(
            pool: Self.pool(first, prober: prober, clock: clock, recorder: recorder), reloads: reloads
        ) {
            guard let host = try? ScriptHost(path: script.path, logger: logger) else {
                rebuilt.yield(false)
                return nil
            }
            rebuilt.yield(true)
            return Self.pool(host, prober: prober, clock: clock, recorder: recorder)
        }
        var outcomes = rebuilds.makeAsyncIterator()
        // Polls whose results the monitors heard (so each one's Sleep is known), in all pools.
        func polls(of url: String) -> Int { recorder.states.filter { $0.url == url }.count }
        let tick = Duration.milliseconds(10)  // the Sleep's resolution

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await sut.run() }
            // a fails twice: polled again at 70 s, then 80 s later.
            #expect(await eventually { polls(of: Self.a) == 1 })
            clock.advance(by: .seconds(70) - tick)
            #expect(prober.polls(of: Self.a) == 1)
            clock.advance(by: tick)
            #expect(await eventually { polls(of: Self.a) == 2 })

            // When: a broken script is saved and a reload asked for, the old one keeps polling.
            try "urls = { \"\(Self.a)\" \n".write(toFile: script.path, atomically: true, encoding: .utf8)
            requestReload.yield()
            #expect(await outcomes.next() == false)
            clock.advance(by: .seconds(80) - tick)
            #expect(prober.polls(of: Self.a) == 2)
            clock.advance(by: tick)
            #expect(await eventually { polls(of: Self.a) == 3 })
            #expect(prober.polls(of: Self.b) == 1)

            // When: a valid script drops b, adds c and brings its own backoff and on_change.
            try """
            urls = { "\(Self.a)", "\(Self.c)" }
            function backoff(r) return 5 * r.error_count + 1 end
            function on_change(s, prev) urlpoll.log("info", "change", s.url, prev and prev.status or "nil") end
            """.write(toFile: script.path, atomically: true, encoding: .utf8)
            requestReload.yield()
            #expect(await outcomes.next() == true)

            // Then: both are polled at once; c succeeds → 1 s; a's fourth failure in a row gets the new policy:
            // 5 × 4 + 1 = 21 s.
            #expect(await eventually { polls(of: Self.c) == 1 })
            #expect(await eventually { polls(of: Self.a) == 4 })
            clock.advance(by: .seconds(1))
            #expect(await eventually { polls(of: Self.c) == 2 })
            clock.advance(by: .seconds(20) - tick)
            #expect(prober.polls(of: Self.a) == 4)
            clock.advance(by: tick)
            #expect(await eventually { polls(of: Self.a) == 5 })
            group.cancelAll()
        }
        // Then: a's unchanged status is not a change; c's first result is.
        #expect(log.all.filter { $0.contains("change") } == ["info: change \(Self.c) nil"])
        #expect(prober.polls(of: Self.a) == 5)
    }

    @Test func reload_releasesThePreviousPool_itsMonitorAndItsScript() async throws {
        // Given: a running pool whose script has hooks (so the pool holds its script host and Lua state),
        // of which the test keeps only weak references.
        let script = try TemporaryScript(
            """
            urls = { { url = "\(Self.a)", interval = 60 }, { url = "\(Self.b)", interval = 70 } }
            function backoff(r) return r.interval end
            function on_result(s, prev) end
            """)
        let prober = ScriptedProber([Self.a: [.status(200)], Self.b: [.status(200)]])
        let clock = ManualClock()
        var first: ScriptHost? = try ScriptHost(path: script.path, logger: Logger(label: "test"))
        var firstPool: PollerPool<ManualClock>? = Self.pool(first!, prober: prober, clock: clock)
        weak let firstHost = first
        weak let firstMonitor = firstPool?.monitor
        let (reloads, requestReload) = AsyncStream<Void>.makeStream()
        let (rebuilds, rebuilt) = AsyncStream<Void>.makeStream()
        let sut = ReloadingService(pool: firstPool!, reloads: reloads) {
            defer { rebuilt.yield() }
            guard let host = try? ScriptHost(path: script.path, logger: Logger(label: "test")) else { return nil }
            return Self.pool(host, prober: prober, clock: clock)
        }
        (first, firstPool) = (nil, nil)
        var outcomes = rebuilds.makeAsyncIterator()

        await withTaskGroup(of: Void.self) { group in
            group.addTask { await sut.run() }
            // Both URLs are polled, and sleep (the monitor's tick and the Sleep wait).
            #expect(await eventually { prober.polls(of: Self.a) == 1 && prober.polls(of: Self.b) == 1 })
            #expect(await eventually { clock.pendingSleeps == 2 })
            #expect(firstHost != nil && firstMonitor != nil)

            // When: the script is reloaded, and the new pool has polled both URLs.
            requestReload.yield()
            await outcomes.next()
            #expect(await eventually { prober.polls(of: Self.a) == 2 && prober.polls(of: Self.b) == 2 })
            #expect(await eventually { clock.pendingSleeps == 2 })

            // Then: nothing keeps the first pool's monitor (and its states) or its script (a Lua state).
            #expect(await eventually { firstMonitor == nil }, "the first pool's monitor outlived a reload")
            #expect(await eventually { firstHost == nil }, "the first script outlived a reload")
            group.cancelAll()
        }
    }

    @Test func stateStore_roundTrips_andRejectsATornFile() throws {
        let file = try TemporaryScript("", name: "state.json")
        let sut = StateStore(path: file.path)
        let state = State(
            url: Self.a, name: "a", status: "500 Internal Server Error", code: 500, health: .down, error: "status",
            detail: "status 500 is not in expect 200-399", errorCount: 4, latency: .milliseconds(12), polls: 9,
            since: 1_700_000_000, checkedAt: 1_700_000_100)
        try sut.save([state])
        #expect(try sut.load() == [state])

        let text = try String(contentsOfFile: file.path, encoding: .utf8)
        try String(text.prefix(text.count / 2)).write(toFile: file.path, atomically: false, encoding: .utf8)
        #expect(throws: StateStore.Unreadable.self) { try sut.load() }
        #expect(try StateStore(path: file.sibling("missing.json")).load() == [])
    }
}
