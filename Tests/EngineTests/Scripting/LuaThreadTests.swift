import NIOCore
import Synchronization
import Testing

@testable import Engine

/// Lua runs on one thread of its own (ScriptHost's executor) while the pollers and their polls run on the
/// prober's event loops: a hook never runs on an I/O thread.
@Suite(.timeLimit(.minutes(1))) struct LuaThreadTests {
    /// The HTTP prober, noting for each probe whether it started on one of the prober's event loops.
    struct LoopNotingProber: Prober {
        let http: HTTPProber
        let onLoop: @Sendable (Bool) -> Void

        var eventLoops: (any EventLoopGroup)? { self.http.eventLoops }

        func probe(_ target: Target, settings: Settings) async -> ProbeResult {
            self.onLoop(self.http.eventLoops?.makeIterator().contains { $0.inEventLoop } ?? false)
            return await self.http.probe(target, settings: settings)
        }
    }

    @Test func everyHook_runsOnTheLuaThread_neverOnAnEventLoop_whilePollsRunOnTheEventLoops() async throws {
        // Given: a loopback server, and a script with a check, backoff, on_result, on_change and report hook.
        let server = try RecordingServer { request in [.ok(request)] }
        let base = "http://127.0.0.1:\(server.port)"
        let (host, script) = try loadHost(
            """
            pollers = 2
            status_interval = 0.05
            urls = { { url = "\(base)/a", check = function(res) return "up" end }, "\(base)/b" }
            function backoff(r) return 0.01 end
            function on_result(s) end
            function on_change(s, previous) end
            function report(s) end
            """)
        _ = script
        let client = HTTPProber.makeClient(pollers: 2)
        let http = HTTPProber(client: client)
        let loops = try #require(http.eventLoops)
        // Per hook, whether each call ran on the Lua thread and on none of the event loops.
        let hooks = Mutex([String: [Bool]]())
        await host.observeHooks { hook in
            let right = ScriptHost.onLuaThread && !loops.makeIterator().contains { $0.inEventLoop }
            hooks.withLock { $0[hook, default: []].append(right) }
        }
        let probes = Mutex([Bool]())
        let prober = LoopNotingProber(http: http) { onLoop in probes.withLock { $0.append(onLoop) } }
        let monitor = StateMonitor(urls: host.config.targets.map(\.url), reporter: host, observers: [host])
        let pool = PollerPool(
            settings: host.config.settings, targets: host.config.targets, prober: prober, policy: host.sleepPolicy,
            checker: host.checker, monitor: monitor, clock: ContinuousClock())

        // When: the pool runs until every hook has run a few times.
        let running = Task { await pool.run() }
        let names: Set = ["check", "backoff", "on_result", "on_change", "report"]
        let allRan = await eventually(within: .seconds(20)) {
            hooks.withLock { seen in names.allSatisfy { (seen[$0]?.count ?? 0) >= 2 } }
        }
        running.cancel()
        await running.value
        try await client.shutdown()

        // Then: every call of every hook ran on the Lua thread, and every probe started on an event loop.
        #expect(allRan)
        for (hook, calls) in hooks.withLock({ $0 }) {
            #expect(calls.allSatisfy { $0 }, "\(hook): \(calls.filter { !$0 }.count) of \(calls.count) calls elsewhere")
        }
        let started = probes.withLock { $0 }
        #expect(!started.isEmpty)
        #expect(started.allSatisfy { $0 }, "\(started.filter { !$0 }.count) of \(started.count) probes off the loops")
    }
}

extension ScriptHost {
    /// Calls `observer` with each hook's name right after it ran, on the thread it ran on.
    fileprivate func observeHooks(_ observer: @escaping @Sendable (String) -> Void) {
        self.runtime.hookObserver = { hook, _, _ in observer(hook) }
    }
}
