import AsyncAlgorithms
import FoundationEssentials
import Synchronization

/// PollerPool is the seed's program: a pool of pollers takes Resources from `pending`, polls each,
/// reports its State to the StateMonitor and hands it on to `complete`, where its Sleep waits as long as
/// the backoff policy says before queueing it again. Ownership moves with the message; nothing is shared.
///
/// Unlike the seed, a poll waiting on the network does not hold its poller: a poller starts the poll as a
/// task of its own, in flight, and takes the next Resource. Polls in flight are bounded in all (by the file
/// descriptors, at most 1,024 by default) and per origin (`pollers`, at least 8), so any number of hung
/// servers cannot hold back polls of healthy ones; see ``InFlightLimit``.
public struct PollerPool<C: Clock>: Sendable where C.Duration == Duration {
    /// The settings the pool runs with (the script's, with command-line overrides).
    public let settings: Settings
    /// The URLs it polls, in the script's order.
    public let targets: [Target]
    /// The monitor every State goes to.
    public let monitor: StateMonitor
    let prober: any Prober
    let policy: any SleepPolicy
    let checker: (any Checker)?
    let clock: C
    let now: @Sendable () -> Double
    let maximumInFlight: Int?
    /// The schedule shared with other instances in PostgreSQL, when there is one (`run --store`): then
    /// ``run(resuming:)`` claims due URLs from it instead of sleeping each Resource here.
    public let schedule: SharedSchedule?
    private let onLocalFailure: @Sendable (String) -> Void
    private let localFailures: LogLimiter

    /// - Parameters:
    ///   - settings: The script's settings, with any command-line overrides applied.
    ///   - targets: The URLs to poll.
    ///   - prober: Sends the requests.
    ///   - policy: Decides each Sleep.
    ///   - checker: Judges responses of URLs that have a `check` hook.
    ///   - monitor: Receives every State.
    ///   - clock: Drives Sleep and the monitor's ticks.
    ///   - now: Wall-clock seconds since the epoch, for `since` and `checked_at`.
    ///   - maximumInFlight: Polls in flight at most, in all; by default as many as the file descriptors
    ///     allow (``DescriptorBudget/pollsInFlight(pollers:)``).
    ///   - onLocalFailure: Told, in words, at most once per `poll_interval` (by `clock`), when polls were not
    ///     made because urlpoll ran out of file descriptors (``ProbeFailure/Kind/local``), with how many.
    ///   - schedule: The schedule shared with other instances (PostgreSQL), if any.
    public init(
        settings: Settings, targets: [Target], prober: any Prober, policy: any SleepPolicy,
        checker: (any Checker)? = nil, monitor: StateMonitor, clock: C,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }, maximumInFlight: Int? = nil,
        onLocalFailure: @escaping @Sendable (String) -> Void = { _ in }, schedule: SharedSchedule? = nil
    ) {
        self.schedule = schedule
        self.onLocalFailure = onLocalFailure
        let origin = clock.now
        self.localFailures = LogLimiter(
            burst: 1, window: settings.pollInterval, now: { origin.duration(to: clock.now).seconds })
        self.maximumInFlight = maximumInFlight
        self.settings = settings
        self.targets = targets
        self.prober = prober
        self.policy = policy
        self.checker = checker
        self.monitor = monitor
        self.clock = clock
        self.now = now
    }

    /// First polls start at most this many per second, so a long list does not all fall due at once.
    public static var startRate: Int { 1000 }

    /// How soon a poll that urlpoll could not make for want of file descriptors (``ProbeFailure/Kind/local``)
    /// is tried again: a short fixed delay, not the error backoff, since the target did nothing wrong.
    public static var localRetryDelay: Duration { .seconds(1) }

    /// `urlpoll once` tries a URL at most this many times while urlpoll is out of file descriptors, then
    /// reports the last (``ProbeFailure/Kind/local``) failure.
    static var localAttempts: Int { 5 }

    /// Polls every URL forever, and ticks the monitor, until the task is cancelled.
    ///
    /// The first polls are spread: up to ``startRate`` start at once, the next batch a second later, and so on,
    /// squeezed if need be so that all have started within one `poll_interval`.
    /// - Parameter resources: Resources to start from (a reload passes the kept URLs' state); by default a
    ///   fresh Resource per target.
    public func run(resuming resumed: consuming [Resource]? = nil) async {
        if let schedule = self.schedule {
            _ = consume resumed
            await self.runShared(schedule)
            return
        }
        // Create our input and output channels. `pending` hands each Resource to the first free poller;
        // `complete` never makes a poller wait: it holds at most one entry per URL, since a Resource is in
        // one place at a time.
        let pending = AsyncChannel<Resource>()
        let (complete, completed) = AsyncStream<Resource>.makeStream()
        var resources = (consume resumed) ?? self.targets.map { Resource($0) }
        let start = self.clock.now
        let batches = (resources.count + Self.startRate - 1) / Self.startRate
        let step = batches > 1 ? min(.seconds(1), self.settings.pollInterval / (batches - 1)) : Duration.zero
        // The pool runs on the prober's event loops, when it has any: the loop below and the Sleep's task on
        // the first, each poller and its polls on one in turn. A poll's I/O, its State and its Resource's
        // way back to `pending` then wake no other thread, or one loop's; Lua runs on its own thread all
        // the same (ScriptHost's executor).
        let loops = EventLoopExecutor.each(of: self.prober.eventLoops)
        await withTaskExecutorPreference(loops.first) {
            await withDiscardingTaskGroup { group in
                // Launch the StateMonitor, off the event loops: a tick's report formats every URL's line.
                group.addTask(executorPreference: globalConcurrentExecutor) {
                    await self.monitor.run(every: self.settings.statusInterval, clock: self.clock)
                }

                // Launch some Poller tasks, each on one of the prober's event loops in turn (its polls run there
                // too). They share the limit on polls in flight.
                var limit = InFlightLimit.forPollers(self.settings.pollers)
                if let maximum = self.maximumInFlight {
                    limit = InFlightLimit(maximum: maximum, perHost: limit.perHost)
                }
                for i in 0..<self.settings.pollers {
                    group.addTask(executorPreference: loops.isEmpty ? nil : loops[i % loops.count]) {
                        await self.poller(in: pending, out: completed, start: start, limit: limit)
                    }
                }

                // Sleep queues each Resource in the slot of its wake-up time (rounded up to 10 ms); one task sleeps
                // until the earliest slot, then sends its Resources to the pending queue in the order they came.
                // A slot added earlier than the one it sleeps for wakes it early. One task for any number of
                // slots: 100,000 sleeping URLs at 60 s fill 6,000 of them.
                let timers = TimerQueue()
                func sleep(_ resource: Resource) {
                    timers.add(resource, to: TimerQueue.slot(for: resource.due))
                }
                group.addTask { await self.sleep(timers, into: pending, start: start) }

                // Send some Resources to the pending queue, a batch at a time.
                for (i, resource) in resources.enumerated() {
                    var resource = resource
                    resource.due = step * (i / Self.startRate)
                    sleep(resource)
                }
                // The timer queue holds them now.
                resources = []

                // Sleep each completed Resource, then queue it again.
                for await var resource in complete {
                    let delay: Duration
                    if resource.retrying {
                        delay = Self.localRetryDelay
                    } else {
                        delay = await self.policy.delay(for: resource, settings: self.settings)
                        resource.lastSleep = delay
                    }
                    resource.due = resource.finished + delay
                    sleep(resource)
                }
                group.cancelAll()
            }
        }
    }

    /// The Sleep: waits on the clock until the earliest slot of `timers` is due (never early), sends its
    /// Resources to `pending` in the order they came, and so on until the task is cancelled. A slot added
    /// earlier than the one it waits for ends the wait, and it waits again for that one.
    private func sleep(_ timers: TimerQueue, into pending: AsyncChannel<Resource>, start: C.Instant) async {
        while !Task.isCancelled {
            guard let slot = timers.earliest else {
                await timers.waitForEarlier(than: nil)
                continue
            }
            let wake = start.advanced(by: slot)
            if wake > self.clock.now {
                // Sleep until the slot, or until an earlier one comes; then look again.
                await withTaskGroup(of: Void.self) { race in
                    race.addTask { try? await self.clock.sleep(until: wake, tolerance: nil) }
                    race.addTask { await timers.waitForEarlier(than: slot) }
                    await race.next()
                    race.cancelAll()
                }
                continue
            }
            for resource in timers.takeEarliest() { await pending.send(resource) }
        }
    }

    /// Polls every URL once, with up to `pollers` requests in flight, and returns the States in report
    /// order.
    /// - Parameter states: Saved states to resume from (matched by URL), as ``run(resuming:)`` does: a URL's
    ///   `error_count` goes on from its saved one and its `since` is kept while its status is the same.
    public func runOnce(resuming states: [State] = []) async -> [State] {
        let byURL = Dictionary(states.map { ($0.rawURL, $0) }, uniquingKeysWith: { first, _ in first })
        let pending = AsyncChannel<Resource>()
        let loops = EventLoopExecutor.each(of: self.prober.eventLoops)
        await withDiscardingTaskGroup { group in
            for i in 0..<min(self.settings.pollers, self.targets.count) {
                group.addTask(executorPreference: loops.isEmpty ? nil : loops[i % loops.count]) {
                    for await resource in pending {
                        var resource = resource
                        for attempt in 1...Self.localAttempts {
                            await self.poll(&resource, lastAttempt: attempt == Self.localAttempts)
                            guard resource.retrying else { break }
                            do { try await self.clock.sleep(for: Self.localRetryDelay, tolerance: nil) } catch { break }
                        }
                    }
                }
            }
            for target in self.targets { await pending.send(Resource(target, resuming: byURL[target.url])) }
            pending.finish()
        }
        return await self.monitor.snapshot()
    }

    /// Poller takes Resources from `pending` and starts a poll of each, in flight on a task of its own that
    /// sends the Resource on to `complete`. It waits only when every slot for polls in flight is taken; a
    /// Resource whose origin is at its limit is parked there, and polled when a poll of that origin ends.
    private func poller(
        in pending: AsyncChannel<Resource>, out complete: AsyncStream<Resource>.Continuation, start: C.Instant,
        limit: InFlightLimit
    ) async {
        await withDiscardingTaskGroup { flights in
            for await var resource in pending {
                guard await limit.reserve() else { return }
                // Lateness is the engine's: the wait for a poller and a slot. A wait parked on the origin's
                // own limit (its server's earlier polls still in flight) is the server's, and not counted.
                resource.lateness = max(.zero, start.duration(to: self.clock.now) - resource.due)
                guard let admitted = limit.admit(resource) else { continue }
                flights.addTask {
                    var next: Resource? = admitted
                    while var resource = next, !Task.isCancelled {
                        await self.poll(&resource, start: start)
                        complete.yield(resource)
                        next = limit.finish(resource.target)
                    }
                }
            }
        }
    }

    /// Poll sends one request for the Resource and reports the new State to the monitor. A poll cut
    /// short by shutdown is not a result and is dropped. A poll urlpoll could not make for want of file
    /// descriptors is not a result either (unless it is the `lastAttempt`): no State is recorded, the
    /// monitor keeps the URL's last one, the Resource is marked `retrying`, and the shortage is logged.
    ///
    /// The instant the probe returned is kept in the Resource (`finished`, from `start`) before anyone hears
    /// of the result, so the Sleep that follows counts from it.
    private func poll(_ resource: inout Resource, start: C.Instant? = nil, lastAttempt: Bool = false) async {
        let result = await self.prober.probe(resource.target, settings: self.settings)
        guard !Task.isCancelled else { return }
        if let start { resource.finished = start.duration(to: self.clock.now) }
        if case .failure(let failure) = result.outcome, failure.isLocal {
            self.logLocalFailure(failure)
            resource.retrying = !lastAttempt
            guard lastAttempt else { return }
        }
        resource.retrying = false
        var verdict: Verdict?
        if let checker = self.checker, resource.target.captureBody, result.isJudged {
            verdict = await checker.check(resource.target, result)
            // A check abandoned because urlpoll is stopping judged nothing: no result.
            guard !Task.isCancelled else { return }
        }
        let state = resource.record(result, verdict: verdict, at: self.now())
        await self.monitor.update(state)
    }

    /// Says, at most once per `poll_interval`, that polls were not made for want of file descriptors, and
    /// how many since the last time it said so.
    private func logLocalFailure(_ failure: ProbeFailure) {
        let (pass, held) = self.localFailures.admit("local")
        guard pass else { return }
        let count = held + 1
        self.onLocalFailure(
            "\(failure.detail): \(count) poll\(count == 1 ? "" : "s") not made, each retried in \(formatSeconds(Self.localRetryDelay.seconds)) s and not counted against its URL; raise the limit (ulimit -n) or lower pollers"
        )
    }
}
