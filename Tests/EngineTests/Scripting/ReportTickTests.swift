@testable import Engine
import Foundation
import Logging
import Synchronization
import Testing

/// A `report` hook that waits on `urlpoll.http` longer than `status_interval`: each tick's calls run
/// together, in URL order, and a tick that comes while the previous tick's report is under way skips its
/// own report and is counted. Time is the manual clock's; the hook waits on a loopback ``HookServer``.
@Suite(.timeLimit(.minutes(2))) struct ReportTickTests {
    @Test func reportWaitingPastTheStatusInterval_theTicksMeanwhileSkipTheirReport_andNoneInterleaves() async throws {
        let server = HookServer()
        try await server.run { base in
            // Given: two URLs, a tick every second of the manual clock, and a report hook that keeps the
            // README's reset pattern (a counter reset at index 1) and, in the first tick's first call, waits
            // on the slow server.
            let clock = ManualClock()
            let (logger, log) = RecordingLogHandler.make()
            let script = try TemporaryScript(
                """
                timeout = 60
                urls = { "\(base)/a", "\(base)/b" }
                local tick, seen = 0, 0
                function report(s)
                  if s.index == 1 then tick = tick + 1; seen = 0 end
                  local mine = tick
                  if mine == 1 and s.index == 1 then urlpoll.http.get("\(base)/slow") end
                  seen = seen + 1
                  urlpoll.log("info", "tick", mine, "index", s.index, "seen", seen, "now", tick)
                end
                """)
            let sut = try ScriptHost(path: script.path, clock: clock, logger: logger)
            let skipped = Mutex([Int]())
            let recorder = StateRecorder()
            let monitor = StateMonitor(
                urls: sut.config.targets.map(\.url), reporter: sut, observers: [recorder],
                onReportSkipped: { total in skipped.withLock { $0.append(total) } })
            for target in sut.config.targets {
                await monitor.update(
                    State(url: target.url, name: target.name, status: "200 OK", code: 200, health: .up))
            }
            var arrivals = server.arrivals.makeAsyncIterator()
            let running = Task { await monitor.run(every: .seconds(1), clock: clock) }

            // When: the first tick's report waits on the server while three more ticks come…
            #expect(await eventually { clock.pendingSleeps == 1 })
            clock.advance(by: .seconds(1))
            #expect(await arrivals.next() == "/slow")
            for _ in 1...3 {
                // (the hook's deadline and the next tick's timer)
                #expect(await eventually { clock.pendingSleeps == 2 }, "the ticks wait for the report")
                clock.advance(by: .seconds(1))
            }
            #expect(await eventually { skipped.withLock { $0 } == [1, 2, 3] })
            // (the rest of each tick, the history's batch, came on time)
            #expect(recorder.ticks == 4)

            // …and then the server answers, and one more tick comes.
            server.release()
            #expect(await eventually { log.all.count { $0.contains(" tick 1 index 2") } == 1 })
            #expect(await eventually { clock.pendingSleeps == 1 })
            clock.advance(by: .seconds(1))
            #expect(await eventually { log.all.count { $0.contains(" tick 2 index 2") } == 1 })
            running.cancel()
            await running.value

            // Then: the ticks that came meanwhile were skipped and counted, and each tick's calls ran
            // together, in order, none of another tick's among them.
            #expect(
                log.all.filter { $0.contains(" tick ") }.map { $0.replacingOccurrences(of: "info: ", with: "") } == [
                    "tick 1 index 1 seen 1 now 1", "tick 1 index 2 seen 2 now 1",
                    "tick 2 index 1 seen 1 now 2", "tick 2 index 2 seen 2 now 2",
                ])
            #expect(skipped.withLock { $0 } == [1, 2, 3])
        }
    }

    /// Skipped reports are counted in `urlpoll_report_ticks_skipped_total`.
    @Test func reportTickSkipped_countsInTheMetric() async throws {
        let metrics = EngineMetrics()
        metrics.reportTickSkipped()
        metrics.reportTickSkipped()
        var buffer: [UInt8] = []
        metrics.registry.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        #expect(text.contains("# TYPE urlpoll_report_ticks_skipped_total counter"), "\(text)")
        #expect(text.contains("\nurlpoll_report_ticks_skipped_total 2\n"), "\(text)")
    }
}
