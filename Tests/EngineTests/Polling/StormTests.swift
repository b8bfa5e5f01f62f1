import Engine
import Logging
import Synchronization
import Testing

/// Thousands of URLs failing at once: the log says so in a few lines, not thousands.
@Suite(.timeLimit(.minutes(2))) struct StormTests {
    @Test func thousandsFailingAtOnce_withAFailingHook_logAFewLines() async throws {
        // Given: 2,000 URLs that were up, and a check that raises for every one of them.
        let urls = (0..<2000).map { "http://127.0.0.1:9/\($0)" }
        let (logger, log) = RecordingLogHandler.make()
        let (host, _) = try loadHost(
            """
            urls = {}
            for i = 0, 1999 do urls[#urls + 1] = "http://127.0.0.1:9/" .. i end
            function check(res) error("no health document") end
            """, logger: logger)
        let prober = ScriptedProber(Dictionary(uniqueKeysWithValues: urls.map { ($0, [ProbeResult.status(503)]) }))
        let limiter = LogLimiter(burst: 20, window: .seconds(10), now: { 0 })
        let monitor = StateMonitor(
            urls: urls, reporter: RecordingReporter(), observers: [ChangeLogger(logger: logger, limiter: limiter)])
        await monitor.seed(urls.map { State(url: $0, name: $0, status: "200 OK", code: 200, health: .up) })
        let sut = PollerPool(
            settings: PollerPoolTests.settings(pollers: 8), targets: host.config.targets, prober: prober,
            policy: host.sleepPolicy, checker: host.checker, monitor: monitor, clock: ManualClock())

        // When: every one of them fails in the same pass.
        let states = await sut.runOnce()

        // Then: all 2,000 are down, and the log holds 5 hook errors and 20 changes.
        #expect(states.count == 2000 && states.allSatisfy { !$0.ok })
        #expect(log.all.filter { $0.contains("no health document") }.count == 5)
        #expect(log.all.filter { $0.contains("-> 503 Service Unavailable (down)") }.count == 20)
    }

    @Test func logLimiter_letsABurstThrough_thenCountsWhatItHeld() {
        let now = Mutex(0.0)
        let sut = LogLimiter(burst: 2, window: .seconds(60), now: { now.withLock { $0 } })
        #expect(sut.admit("k") == (true, 0))
        #expect(sut.admit("k") == (true, 0))
        #expect(sut.admit("k") == (false, 0))
        #expect(sut.admit("k") == (false, 0))
        #expect(sut.admit("other") == (true, 0))
        now.withLock { $0 = 61 }
        #expect(sut.admit("k") == (true, 2))
        #expect(LogLimiter.suffix(2) == " (2 similar messages not logged)")
    }
}
