import Engine
import Foundation
import Synchronization
import Testing

/// One frozen server must not starve the other URLs at the default settings (2 pollers): a poll waiting on
/// the network holds no poller, and one origin can hold only so many polls in flight.
@Suite(.timeLimit(.minutes(2))) struct StarvationTests {
    /// Answers healthy URLs at once, and never answers a URL on the frozen origin (until cancelled).
    final class FrozenOriginProber: Prober {
        let frozen: String
        /// Kept so the streams hanging polls wait on never finish.
        private let kept = Mutex([AsyncStream<Void>.Continuation]())

        init(frozen: String) { self.frozen = frozen }

        func probe(_ target: Target, settings: Settings) async -> ProbeResult {
            guard target.url.hasPrefix(self.frozen) else { return .status(200) }
            // A stream that never yields nor finishes: iterating it waits until the task is cancelled.
            let (never, continuation) = AsyncStream<Void>.makeStream()
            self.kept.withLock { $0.append(continuation) }
            for await _ in never {}
            return .failed(.timeout)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func healthyURLs_keepTheirSchedule_whileEveryPollOfAFrozenOriginHangs() async throws {
        // Given: 20 URLs on an origin that never answers, listed first, then 20 healthy URLs, each with its
        // own interval (10 s plus 20 ms per URL) so each sleeps on its own timer; the default 2 pollers.
        let clock = ManualClock()
        let frozen = (1...20).map { Target(url: "http://127.0.0.1:1/frozen/\($0)") }
        let healthy = (1...20).map { i in
            var target = Target(url: "http://127.0.0.1:2/healthy/\(i)")
            target.interval = .seconds(10) + .milliseconds(20 * i)
            return target
        }
        var settings = Settings()
        settings.statusInterval = .seconds(1_000_000)
        #expect(settings.pollers == 2)
        let monitor = StateMonitor(urls: (frozen + healthy).map(\.url), reporter: RecordingReporter())
        let sut = PollerPool(
            settings: settings, targets: frozen + healthy, prober: FrozenOriginProber(frozen: "http://127.0.0.1:1/"),
            policy: LinearBackoff(), monitor: monitor, clock: clock)
        func polls() async -> [Int] {
            let states = await monitor.snapshot()
            return healthy.map { target in states.first { $0.url == target.url }?.polls ?? 0 }
        }

        await withTaskGroup(of: Void.self) { group in
            group.addTask { await sut.run() }
            // Then: every healthy URL is polled at once, and sleeps its interval (the monitor's tick and the
            // Sleep, for the first of 20 slots), though every poll of the frozen origin still hangs.
            #expect(await eventually(checking: { await polls() == Array(repeating: 1, count: 20) }))
            #expect(await eventually { clock.pendingSleeps == 2 })
            #expect(await polls() == Array(repeating: 1, count: 20))
            // When: the intervals pass.
            clock.advance(by: .seconds(11))
            // Then: each is polled again, on time, and sleeps again.
            #expect(await eventually(checking: { await polls() == Array(repeating: 2, count: 20) }))
            #expect(await eventually { clock.pendingSleeps == 2 })
            let late = await monitor.snapshot().filter { $0.url.contains("/healthy/") }.map(\.lateness)
            #expect(late.allSatisfy { $0 <= .seconds(1) }, "\(late)")
            group.cancelAll()
        }
        #expect(clock.pendingSleeps == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func realServers_aListenerThatNeverAnswers_doesNotStarveAHealthyServer() async throws {
        // Given: a listener that never answers holding 20 URLs (timeout 2 s), listed first, and 20 URLs on a
        // healthy server, polled every 0.5 s, at the default 2 pollers, with the real HTTP prober.
        let hanging = try HangingListener()
        let server = try RecordingServer.keepAlive()
        let frozen = (1...20).map { Target(url: "\(hanging.url)/frozen/\($0)") }
        let healthy = (1...20).map { Target(url: "http://127.0.0.1:\(server.port)/healthy/\($0)") }
        var settings = Settings()
        settings.timeout = .seconds(2)
        settings.pollInterval = .milliseconds(500)
        settings.statusInterval = .seconds(1_000_000)
        let client = HTTPProber.makeClient(pollers: settings.pollers)
        let prober = HTTPProber(client: client)
        let monitor = StateMonitor(urls: (frozen + healthy).map(\.url), reporter: RecordingReporter())
        let sut = PollerPool(
            settings: settings, targets: frozen + healthy, prober: prober, policy: LinearBackoff(),
            monitor: monitor, clock: ContinuousClock())

        // When: it runs for 3 s.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await sut.run() }
            try? await Task.sleep(for: .seconds(3))
            group.cancelAll()
        }
        prober.shutdown()
        try await client.shutdown()

        // Then: every healthy URL was polled about every 0.5 s (at least 4 times in 3 s), and never late by
        // more than a second; the frozen URLs timed out.
        let states = await monitor.snapshot()
        let healthyStates = states.filter { $0.url.contains("/healthy/") }
        #expect(healthyStates.count == 20)
        #expect(healthyStates.allSatisfy { $0.polls >= 4 && $0.status == "200 OK" }, "\(healthyStates.map(\.polls))")
        #expect(healthyStates.allSatisfy { $0.lateness < .seconds(1) })
        #expect(states.filter { $0.url.contains("/frozen/") }.allSatisfy { $0.status == "timeout" })
    }
}
