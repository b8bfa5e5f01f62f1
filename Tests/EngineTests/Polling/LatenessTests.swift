import Engine
import Synchronization
import Testing

/// Lateness: when the pool cannot keep up, reports say how late polls started, and the monitor warns.
@Suite(.timeLimit(.minutes(2))) struct LatenessTests {
    /// GateProber holds the first poll of `held` until `open()`, and says when it is holding it.
    final class GateProber: Prober {
        let held: String
        let holding: AsyncStream<Void>
        private let holdingContinuation: AsyncStream<Void>.Continuation
        private let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)

        init(holding url: String) {
            self.held = url
            (self.holding, self.holdingContinuation) = AsyncStream.makeStream()
        }

        func probe(_ target: Target, settings: Settings) async -> ProbeResult {
            if target.url == self.held {
                await withCheckedContinuation { continuation in
                    self.gate.withLock { $0 = continuation }
                    self.holdingContinuation.yield()
                }
            }
            return .status(200)
        }

        func open() {
            self.gate.withLock { $0 }?.resume()
        }
    }

    @Test func lateness_whenEverySlotForPollsInFlightIsTaken_isReported_andWarnedAbout() async throws {
        // Given: one poll in flight at most, two URLs due at once, and the first request takes 5 s.
        let clock = ManualClock()
        let prober = GateProber(holding: "http://127.0.0.1:9/a")
        let warnings = Mutex([Duration]())
        let reporter = RecordingReporter()
        var reports = reporter.reports.makeAsyncIterator()
        let recorder = StateRecorder()
        let monitor = StateMonitor(
            urls: ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"], reporter: reporter, observers: [recorder],
            onLate: { worst in warnings.withLock { $0.append(worst) } })
        var settings = PollerPoolTests.settings(pollers: 1)
        settings.statusInterval = .seconds(30)
        let sut = PollerPool(
            settings: settings, targets: [Target(url: "http://127.0.0.1:9/a"), Target(url: "http://127.0.0.1:9/b")],
            prober: prober, policy: LinearBackoff(), monitor: monitor, clock: clock, maximumInFlight: 1)

        await withTaskGroup(of: Void.self) { group in
            group.addTask { await sut.run() }
            var holding = prober.holding.makeAsyncIterator()
            await holding.next()
            clock.advance(by: .seconds(5))
            prober.open()
            // When: both have been polled, and the monitor ticks.
            var polls = recorder.polls.makeAsyncIterator()
            _ = await polls.next()
            _ = await polls.next()
            clock.advance(by: .seconds(25))
            _ = await reports.next()
            group.cancelAll()
        }
        // Then: b started 5 s late; a on time; the tick warned about 5 s.
        let states = await monitor.snapshot()
        #expect(states.map(\.lateness) == [.zero, .seconds(5)])
        #expect(warnings.withLock { $0 } == [.seconds(5)])
    }
}
