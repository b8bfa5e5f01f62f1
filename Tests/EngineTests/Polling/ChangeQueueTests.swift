import Engine
import Logging
import Synchronization
import Testing

/// The `on_change` queue: a poll hands its change on and goes on; hooks run after their change's commit (a
/// real SQLite store, held shut where a commit must hang), in order per URL and side by side across URLs,
/// within a bound, and on a clean stop. Time is the manual clock's.
@Suite(.timeLimit(.minutes(1))) struct ChangeQueueTests {
    static let (a, b) = ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")

    static func state(_ url: String, _ health: Health = .up, at: Double) -> State {
        HistoryStoreTests.state(url, health, at: HistoryStoreTests.base + at)
    }

    /// Runs `body` with `queue` running, then stops it (unlimited: every hook queued runs) and waits for it.
    static func running<T>(_ queue: ChangeQueue<ManualClock>, _ body: () async throws -> T) async rethrows -> T {
        async let done: Void = queue.run()
        let result = try await body()
        queue.finish(limited: false)
        await done
        return result
    }

    /// A hook that records each change as it starts and ends, and holds the changes of `held` URLs until
    /// ``release()`` (or until its task is cancelled, as a real hook waiting on `urlpoll.http` is).
    final class HeldHook: StateObserver {
        private let held: Set<String>
        private let gate = Mutex<[CheckedContinuation<Void, Never>]?>([])
        private let events = Mutex([String]())
        /// `start URL status` and `end URL status`, in the order they happened.
        var log: [String] { self.events.withLock { $0 } }
        var ended: Int { self.log.filter { $0.hasPrefix("end") }.count }

        init(holding held: Set<String> = []) { self.held = held }

        func changed(_ state: State, previous: State?) async {
            self.events.withLock { $0.append("start \(state.url) \(state.status)") }
            if self.held.contains(state.url) {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let open = self.gate.withLock { gate -> Bool in
                            guard gate != nil else { return true }
                            gate!.append(continuation)
                            return false
                        }
                        if open { continuation.resume() }
                    }
                } onCancel: {
                    self.release()
                }
            }
            self.events.withLock { $0.append("end \(state.url) \(state.status)") }
        }

        /// Lets every held hook (and every later one) end.
        func release() {
            let waiting = self.gate.withLock { gate in
                defer { gate = nil }
                return gate ?? []
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    /// N0: with `--data` and `on_change`, a poll waited for its change's commit; a store another process
    /// held locked made each change hold its poller for 1 s, so polls fell to one per poller a second. Now a
    /// poll that brings a change goes on at once, whether the commit returns or not.
    @Test func aPollBringingAChange_neverWaitsForItsCommitNorItsHook() async throws {
        // Given: a store whose commits never return, and a commit limit that never passes (the queue's clock
        // stands still): the worst a store can do.
        let folder = HistoryStoreTests.Folder()
        let store = HistoryStoreTests.GatedStore(try SQLiteHistoryStore(directory: folder.path))
        let writer = HistoryWriter(store: store, logger: Logger(label: "test"))
        let queue = ChangeQueue(clock: ManualClock(), logger: Logger(label: "test"))
        let hook = HeldHook()
        // A URL whose every poll is a change: 200, 500, 200, …
        let url = Self.a
        let answers = (0..<8).map { $0 % 2 == 0 ? ProbeResult.status(200) : .status(500) }
        let prober = ScriptedProber([url: answers])
        let monitor = StateMonitor(
            urls: [url], reporter: RecordingReporter(), observers: [queue.observer(hook: hook, history: writer)])
        let clock = ManualClock()
        let pool = PollerPool(
            settings: PollerPoolTests.settings(), targets: [Target(url: url)], prober: prober,
            policy: LinearBackoff(), monitor: monitor, clock: clock)

        async let writing: Void = writer.run()
        async let hooking: Void = queue.run()
        try await PollerPoolTests.withRunning(pool, clock: clock) { sleeps in
            // When: the URL is polled 7 times, each poll a change.
            for _ in 0..<6 {
                let sleep = try #require(await PollerPoolTests.nextSleep(&sleeps))
                clock.advance(by: sleep)
            }
            // Then: every poll came at its time (each Sleep above follows a poll that returned), and no hook
            // has run: each still waits for its commit.
            #expect(await PollerPoolTests.eventuallyPolled(url, 7, by: monitor))
            #expect(prober.polls(of: url) == 7)
            #expect(queue.waiting == 7)
            #expect(hook.log.isEmpty)
        }
        // And: once the store answers, the hooks run after their commits, in order.
        store.open()
        #expect(await eventually { hook.ended == 7 })
        #expect(
            hook.log.filter { $0.hasPrefix("end") }.map { $0.hasSuffix("200 OK") } == [
                true, false, true, false, true, false, true,
            ])
        queue.finish()
        writer.finish()
        await hooking
        await writing
    }

    /// N0: a burst of changes while the store hung was alerted at about 8 a second (each change's wait for
    /// its commit paid in series) and most of it never. Each change's wait now ends at its own deadline
    /// (heard + the limit), so the whole burst waits one limit, once.
    @Test func aBurstDuringAHungCommit_waitsOneLimitInAll_notOnePerChange() async throws {
        let folder = HistoryStoreTests.Folder()
        let store = HistoryStoreTests.GatedStore(try SQLiteHistoryStore(directory: folder.path))
        let writer = HistoryWriter(store: store, logger: Logger(label: "test"))
        let clock = ManualClock()
        let queue = ChangeQueue(commitLimit: .seconds(1), clock: clock, logger: Logger(label: "test"))
        let hook = HeldHook()
        let urls = (0..<400).map { "http://127.0.0.1:9/\($0)" }
        let monitor = StateMonitor(
            urls: urls, reporter: NoReporter(), observers: [queue.observer(hook: hook, history: writer)])
        try await HistoryStoreTests.running(writer) { () async throws in
            try await Self.running(queue) { () async throws in
                // Given: 400 URLs go down at once while the store hangs.
                for url in urls { await monitor.update(Self.state(url, .down, at: 1)) }
                #expect(queue.waiting == 400)
                var sleeps = clock.sleeps.makeAsyncIterator()
                #expect(await sleeps.next() == .seconds(1))
                #expect(hook.log.isEmpty)
                // When: one second passes.
                clock.advance(by: .seconds(1))
                // Then: every hook runs, none waiting a second of its own.
                #expect(await eventually { hook.ended == 400 }, "\(hook.ended) of 400")
                #expect(try store.savedStates().isEmpty)
                store.open()
            }
        }
    }

    /// Per URL, hooks run in the order of the changes; across URLs, one URL's slow hook holds up no other's.
    @Test func hooks_runInOrderPerURL_andAHeldOneHoldsUpNoOtherURL() async throws {
        let hook = HeldHook(holding: [Self.a])
        let queue = ChangeQueue(clock: ManualClock(), logger: Logger(label: "test"))
        let monitor = StateMonitor(
            urls: [Self.a, Self.b], reporter: NoReporter(), observers: [queue.observer(hook: hook, history: nil)])
        await Self.running(queue) {
            // Given: a's hook is held; a changes again, then b changes.
            await monitor.update(Self.state(Self.a, .down, at: 1))
            #expect(await eventually { hook.log == ["start \(Self.a) refused"] })
            await monitor.update(Self.state(Self.a, .up, at: 2))
            await monitor.update(Self.state(Self.b, .down, at: 3))
            // Then: b's hook runs meanwhile; a's second waits for its first.
            #expect(await eventually { hook.log.contains("end \(Self.b) refused") })
            #expect(!hook.log.contains("start \(Self.a) 200 OK"))
            // When: a's first hook ends, its second runs, after it.
            hook.release()
            #expect(await eventually { hook.ended == 3 })
            let aEvents = hook.log.filter { $0.contains(Self.a) }
            #expect(
                aEvents == [
                    "start \(Self.a) refused", "end \(Self.a) refused", "start \(Self.a) 200 OK",
                    "end \(Self.a) 200 OK",
                ])
        }
    }

    /// The same with the script host: an `on_change` waiting on `urlpoll.http` (a server that does not answer
    /// yet) holds up no other URL's alert.
    @Test func anOnChangeWaitingOnARequest_holdsUpNoOtherURLsAlert() async throws {
        let server = HookServer()
        try await server.run { base in
            let (host, script) = try loadHost(
                """
                urls = { "\(Self.a)", "\(Self.b)" }
                function on_change(s)
                  if s.url:sub(-1) == "a" then urlpoll.http.get("\(base)/slow") end
                  urlpoll.http.post("\(base)/echo?" .. s.url:sub(-1), {})
                end
                """)
            _ = script
            let queue = ChangeQueue(clock: ManualClock(), logger: Logger(label: "test"))
            let monitor = StateMonitor(
                urls: [Self.a, Self.b], reporter: NoReporter(), observers: [queue.observer(hook: host, history: nil)])
            await Self.running(queue) {
                var arrivals = server.arrivals.makeAsyncIterator()
                await monitor.update(Self.state(Self.a, .down, at: 1))
                #expect(await arrivals.next() == "/slow")
                await monitor.update(Self.state(Self.b, .down, at: 2))
                #expect(await eventually { server.seen.contains("POST /echo?b {}") }, "\(server.seen)")
                #expect(!server.seen.contains("POST /echo?a {}"))
                server.release()
                #expect(await eventually { server.seen.contains("POST /echo?a {}") }, "\(server.seen)")
            }
        }
    }

    /// Bounded: with `capacity` changes waiting, a poll bringing one more waits for room (said once), and
    /// no change is dropped.
    @Test func whenFull_aPollWaitsForRoom_sayingSoOnce_andNoChangeIsLost() async throws {
        let (logger, log) = RecordingLogHandler.make()
        let hook = HeldHook(holding: [Self.a, Self.b])
        let queue = ChangeQueue(capacity: 2, clock: ManualClock(), logger: logger)
        let urls = [Self.a, Self.b, "http://127.0.0.1:9/c"]
        let monitor = StateMonitor(
            urls: urls, reporter: NoReporter(), observers: [queue.observer(hook: hook, history: nil)])
        await Self.running(queue) {
            await monitor.update(Self.state(urls[0], .down, at: 1))
            await monitor.update(Self.state(urls[1], .down, at: 2))
            // When: a third change comes while two hooks are held.
            let third = Mutex(false)
            async let updated: Void = {
                await monitor.update(Self.state(urls[2], .down, at: 3))
                third.withLock { $0 = true }
            }()
            // Then: its poll waits, and a warning says why.
            #expect(
                await eventually { log.all.contains { $0.contains("2 changes are waiting for their on_change hook") } })
            #expect(!third.withLock { $0 })
            #expect(queue.waiting == 2)
            // When: the hooks end, it goes on, and its hook runs too.
            hook.release()
            await updated
            #expect(await eventually { hook.ended == 3 })
            #expect(log.all.filter { $0.contains("waiting for their on_change hook") }.count == 1)
        }
    }

    /// A clean stop runs the hooks still queued; those that do not finish within the stop's limit are
    /// abandoned, and an error line counts them.
    @Test func aCleanStop_runsTheQueuedHooks_withinTheStopLimit() async throws {
        let (logger, log) = RecordingLogHandler.make()
        let clock = ManualClock()
        let hook = HeldHook(holding: [Self.a])
        let queue = ChangeQueue(stopLimit: .seconds(5), clock: clock, logger: logger)
        let monitor = StateMonitor(
            urls: [Self.a, Self.b], reporter: NoReporter(), observers: [queue.observer(hook: hook, history: nil)])
        async let done: Void = queue.run()
        // Given: a's hook is held, a's next change and b's wait behind it or beside it.
        await monitor.update(Self.state(Self.a, .down, at: 1))
        #expect(await eventually { hook.log == ["start \(Self.a) refused"] })
        await monitor.update(Self.state(Self.a, .up, at: 2))
        await monitor.update(Self.state(Self.b, .down, at: 3))
        // When: urlpoll stops.
        queue.finish()
        // Then: the hooks queued still run (b's), a change heard after the stop is not queued …
        #expect(await eventually { hook.log.contains("end \(Self.b) refused") })
        await monitor.update(Self.state(Self.b, .up, at: 4))
        var sleeps = clock.sleeps.makeAsyncIterator()
        #expect(await sleeps.next() == .seconds(5))
        // … and at the limit the held one is abandoned (its task cancelled, as a hook waiting on
        // `urlpoll.http` is), and both are counted: the hook cut short (a's first; a re-test's F4: it was
        // not counted) and the change not hooked (a's second).
        clock.advance(by: .seconds(5))
        await done
        #expect(!hook.log.contains("start \(Self.a) 200 OK"))
        #expect(
            log.all.contains {
                $0.hasPrefix("error:") && $0.contains("2 changes' on_change hooks were not run or cut short")
            },
            "\(log.all)")
    }

    /// A hook that ends one call per permit, in the order the calls came.
    final class PermitHook: StateObserver {
        private let gate = Mutex((permits: 0, waiting: [CheckedContinuation<Void, Never>]()))
        private let count = Mutex(0)
        var ended: Int { self.count.withLock { $0 } }

        func changed(_ state: State, previous: State?) async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = self.gate.withLock { gate -> Bool in
                    if gate.permits > 0 {
                        gate.permits -= 1
                        return true
                    }
                    gate.waiting.append(continuation)
                    return false
                }
                if now { continuation.resume() }
            }
            self.count.withLock { $0 += 1 }
        }

        /// Lets `n` calls end (those waiting first, then the next ones).
        func allow(_ n: Int) {
            let resumed = self.gate.withLock { gate -> [CheckedContinuation<Void, Never>] in
                let taken = Array(gate.waiting.prefix(n))
                gate.waiting.removeFirst(taken.count)
                gate.permits += n - taken.count
                return taken
            }
            for continuation in resumed { continuation.resume() }
        }
    }

    /// A re-test's F5: a queue hovering at its bound (a hook ends, a change comes) said "N changes are waiting"
    /// again at each room made, 45 times in 14 s. An episode now ends once the queue is half empty.
    @Test func aQueueHoveringAtItsBound_saysSoOnce_untilItIsHalfEmpty() async throws {
        let (logger, log) = RecordingLogHandler.make()
        let hook = PermitHook()
        let queue = ChangeQueue(capacity: 4, clock: ManualClock(), logger: logger)
        let urls = (0..<12).map { "http://127.0.0.1:9/u\($0)" }
        let monitor = StateMonitor(
            urls: urls, reporter: NoReporter(), observers: [queue.observer(hook: hook, history: nil)])
        let said = { log.all.filter { $0.contains("changes are waiting for their on_change hook") }.count }
        await Self.running(queue) {
            // Given: a full queue (4 hooks held) and a fifth change whose poll waits for room.
            for url in urls[0..<4] { await monitor.update(Self.state(url, .down, at: 1)) }
            async let fifth: Void = monitor.update(Self.state(urls[4], .down, at: 2))
            #expect(await eventually { said() == 1 && queue.holdsPollsBack })
            // When: hooks end one at a time while changes keep coming, the queue never below 3 of 4.
            hook.allow(1)
            await fifth
            for (i, url) in urls[5..<9].enumerated() {
                hook.allow(1)
                #expect(await eventually { hook.ended == i + 2 })
                await monitor.update(Self.state(url, .down, at: 3))
            }
            // Then: one line for the whole episode.
            async let next: Void = monitor.update(Self.state(urls[9], .down, at: 4))
            #expect(await eventually { queue.holdsPollsBack })
            #expect(said() == 1, "\(log.all)")
            hook.allow(100)
            await next
            #expect(await eventually { queue.waiting == 0 })
        }
    }
}
