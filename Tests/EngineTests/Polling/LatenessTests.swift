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

    /// OriginGate holds every poll of one origin until `open()`, and says each time it holds one.
    final class OriginGate: Prober {
        let origin: String
        let holding: AsyncStream<Void>
        private let holdingContinuation: AsyncStream<Void>.Continuation
        private let held = Mutex<[CheckedContinuation<Void, Never>]?>([])

        init(holding origin: String) {
            self.origin = origin
            (self.holding, self.holdingContinuation) = AsyncStream.makeStream()
        }

        func probe(_ target: Target, settings: Settings) async -> ProbeResult {
            if target.url.hasPrefix(self.origin + "/") {
                await withCheckedContinuation { continuation in
                    let wait = self.held.withLock { held in
                        held?.append(continuation)
                        return held != nil
                    }
                    if wait { self.holdingContinuation.yield() } else { continuation.resume() }
                }
            }
            return .status(200)
        }

        /// Lets every held poll, and every later one, through.
        func open() {
            for continuation in self.held.withLock({ held in
                defer { held = nil }; return held ?? []
            }) {
                continuation.resume()
            }
        }
    }

    /// A URL that waits because its own server still holds that origin's every slot (8 per origin here) is
    /// late by its server, not by the engine: its lateness stays zero and the monitor does not say the engine
    /// cannot keep up. Before, issue 11's new-user test (100 URLs on a frozen server, 200 healthy) warned every
    /// tick that the engine could not keep up with 300 URLs on 32 pollers.
    @Test func lateness_whenAURLWaitsOnlyForItsOwnOrigin_isNotTheEngines() async throws {
        // Given: 9 URLs on a frozen server (8 in flight at most per origin) and a healthy one, slots to spare.
        let clock = ManualClock()
        let frozen = "http://127.0.0.1:9"
        let prober = OriginGate(holding: frozen)
        let urls = (1...9).map { "\(frozen)/\($0)" } + ["http://127.0.0.2:9/healthy"]
        let warnings = Mutex([Duration]())
        let reporter = RecordingReporter()
        var reports = reporter.reports.makeAsyncIterator()
        let recorder = StateRecorder()
        let monitor = StateMonitor(
            urls: urls, reporter: reporter, observers: [recorder],
            onLate: { worst in warnings.withLock { $0.append(worst) } })
        var settings = PollerPoolTests.settings(pollers: 1)
        settings.statusInterval = .seconds(30)
        let sut = PollerPool(
            settings: settings, targets: urls.map { Target(url: $0) }, prober: prober, policy: LinearBackoff(),
            monitor: monitor, clock: clock, maximumInFlight: 20)

        await withTaskGroup(of: Void.self) { group in
            group.addTask { await sut.run() }
            // When: the frozen server holds 8 polls for 5 s, the 9th parked behind them, and the monitor ticks.
            var polls = recorder.polls.makeAsyncIterator()
            _ = await polls.next()  // the healthy URL's
            var holding = prober.holding.makeAsyncIterator()
            for _ in 1...8 { await holding.next() }
            clock.advance(by: .seconds(5))
            prober.open()
            for _ in 1...9 { _ = await polls.next() }
            clock.advance(by: .seconds(25))
            _ = await reports.next()
            group.cancelAll()
        }
        // Then: no poll was late for want of pollers or slots, and no tick blamed the engine.
        let states = await monitor.snapshot()
        #expect(states.count == 10)
        #expect(states.allSatisfy { $0.lateness == .zero }, "\(states.map(\.lateness))")
        #expect(warnings.withLock { $0 } == [])
    }
}

extension LatenessTests {
    /// Issue 15: ticks missed while urlpoll or its store was frozen are said once per episode (ticks late in
    /// a row, up to a tick on time), however many late ticks it holds; every missed tick is still counted.
    @Test func ticksMissed_areSaidOncePerEpisode_andEveryOneCounted() async {
        let told = Mutex<[(count: Int, first: Bool)]>([])
        let monitor = StateMonitor(
            urls: ["http://127.0.0.1:9/"], reporter: RecordingReporter(),
            onTicksMissed: { count, first in told.withLock { $0.append((count, first)) } })
        // Given: two late ticks in a row (2 missed, then 1), a tick on time, then another late one.
        for missed in [2, 1, 0, 3] { await monitor.skipped(missed) }
        // Then: the first of each episode says so; all 6 are counted.
        #expect(told.withLock { $0.map(\.first) } == [true, false, true])
        #expect(told.withLock { $0.map(\.count).reduce(0, +) } == 6)
    }
}
