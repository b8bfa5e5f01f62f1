import AsyncAlgorithms
import Synchronization

/// StateMonitor maintains the url→State map and reports it on every tick. It alone owns the map: pollers
/// send it States, observers hear of every result and every change as it happens, and the reporter gets a
/// sorted copy on each tick.
///
/// The map is keyed by each URL as the script wrote it (``State/rawURL``), which the loader keeps unique,
/// not by the URL as printed: `http://a:p1@h/` and `http://a:p2@h/` print alike (`a:xxxxx@`) but are two
/// URLs with two states.
public actor StateMonitor {
    private var states: [String: State] = [:]
    /// URLs (as written) in report order, fixed at creation: sorted by the URL as printed, then as written.
    private let order: [String]
    private let reporter: any Reporter
    private let observers: [any StateObserver]
    private let store: StateStore?
    private let onStoreError: @Sendable (String) -> Void
    /// Whether a state arrived since the store was last written.
    private var dirty = false
    /// The latest start among polls since the last tick.
    private var worstLateness: Duration = .zero
    private let onLate: @Sendable (Duration) -> Void
    /// Whether a tick's report is under way (``run(every:clock:)``): a tick that comes meanwhile skips its own.
    private var reportUnderWay = false
    /// The ticks whose report was skipped so far.
    private var skippedReports = 0
    private let onReportSkipped: @Sendable (_ total: Int) -> Void
    private let onTicksMissed: @Sendable (_ count: Int, _ first: Bool) -> Void
    /// Whether the last tick came late or after missed ones: the ticks since are one lateness episode.
    private var missing = false
    /// Lateness above this is reported by `onLate` on the next tick.
    public static var lateThreshold: Duration { .seconds(1) }

    /// - Parameters:
    ///   - urls: The URLs as the script wrote them (``Target/url``): the map's keys.
    ///   - store: Where to keep the states across restarts; written on a tick when anything changed.
    ///   - onStoreError: Told, in words, when the store cannot be written.
    ///   - onLate: Told on a tick when polls since the last one started more than ``lateThreshold`` behind
    ///     schedule, with the worst lateness: the engine cannot keep up.
    ///   - onReportSkipped: Told when a tick skips its report because the previous tick's is still under way
    ///     (a `report` hook waiting on `urlpoll.http` past `status_interval`), with the number skipped so far.
    ///   - onTicksMissed: Told when ticks fell due while urlpoll or its store was frozen (``Ticks``), with how
    ///     many: their reports are not made up (`urlpoll_report_ticks_skipped_total` counts them too); and
    ///     `first`, true for the first of an episode (ticks late in a row, up to a tick on time), so that a
    ///     warning is said once an episode while every missed tick is counted.
    public init(
        urls: [String], reporter: any Reporter, observers: [any StateObserver] = [], store: StateStore? = nil,
        onStoreError: @escaping @Sendable (String) -> Void = { _ in },
        onLate: @escaping @Sendable (Duration) -> Void = { _ in },
        onReportSkipped: @escaping @Sendable (_ total: Int) -> Void = { _ in },
        onTicksMissed: @escaping @Sendable (_ count: Int, _ first: Bool) -> Void = { _, _ in }
    ) {
        self.onTicksMissed = onTicksMissed
        self.onLate = onLate
        self.onReportSkipped = onReportSkipped
        if urls.contains(where: RequestDescription.mayHaveUserInfo) {
            self.order = urls.map { (shown: RequestDescription.redacting($0), raw: $0) }
                .sorted { $0.shown != $1.shown ? $0.shown < $1.shown : $0.raw < $1.raw }.map(\.raw)
        } else {
            // No user information: each URL prints as written.
            self.order = urls.sorted()
        }
        self.states.reserveCapacity(urls.count)
        self.reporter = reporter
        self.observers = observers
        self.store = store
        self.onStoreError = onStoreError
    }

    /// Takes over states from before a reload or a restart, or the shared schedule's fleet, for the URLs this
    /// monitor has, without telling the observers: a URL whose status then stays the same is not a change. A
    /// state older (by `checkedAt`) than the one held is not taken: a poll heard since the states were read
    /// stays.
    public func seed(_ states: [State]) {
        let known = Set(self.order)
        for state in states where known.contains(state.rawURL) {
            if let held = self.states[state.rawURL], held.checkedAt > state.checkedAt { continue }
            self.states[state.rawURL] = state
        }
    }

    /// Drops the states of `urls` (as written, ``State/rawURL``) without telling the observers: URLs whose
    /// rows left the shared schedule's fleet (retired by an instance that loaded a newer script).
    public func forget(_ urls: [String]) {
        for url in urls { self.states[url] = nil }
    }

    /// The map as of the last tick (nil before the first): what `/status` and the page show, so that one
    /// document's states and the changes the history committed with that tick tell one story.
    private var ticked: [String: State]?
    private let tickCounter = Atomic<Int>(0)
    /// Whether a tick keeps its url→State map for ``statesAsOfTick()`` (``keepTickSnapshots()``).
    private let keepsTickSnapshots = Atomic<Bool>(false)

    /// Makes each tick keep its url→State map for ``statesAsOfTick()``: a listener serving `/status` turns
    /// it on (``MetricsSource/serve(monitor:targets:settings:modules:)``). Off, a tick keeps nothing: a kept
    /// map makes the next update copy the whole map (at 100,000 URLs about 8 MB, once per tick).
    public nonisolated func keepTickSnapshots() {
        self.keepsTickSnapshots.store(true, ordering: .relaxed)
    }

    /// The ticks so far; read without a message (``StatusCache`` keeps a document for one tick).
    public nonisolated var tickCount: Int { self.tickCounter.load(ordering: .relaxed) }

    /// The url→State map as of the last tick (as ``statesByURL()`` then), or as it is now before the first
    /// tick; and whether it is a tick's.
    public func statesAsOfTick() -> (states: [String: State], ticked: Bool) {
        if let ticked = self.ticked { return (ticked, true) }
        return (self.states, false)
    }

    /// Whether ``tick()`` runs the reporter; an instance sharing a schedule reports only while it leads.
    private var reports = true

    /// Records the state a poller reports, and tells the observers.
    public func update(_ state: State) async {
        await self.update(state, previous: self.states[state.rawURL])
    }

    /// Records a state whose previous one the caller holds (a shared schedule's row, which another instance
    /// may have written since this monitor last heard of the URL), and tells the observers: a change when
    /// `state` differs from `previous`.
    public func update(_ state: State, previous: State?) async {
        self.states[state.rawURL] = state
        self.dirty = true
        self.worstLateness = max(self.worstLateness, state.lateness)
        for observer in self.observers {
            await observer.polled(state, previous: previous)
        }
        if state.differs(from: previous) {
            for observer in self.observers {
                await observer.changed(state, previous: previous)
            }
        }
    }

    /// Turns the reporter on or off for the ticks to come (``tick()`` tells the observers either way).
    public func reporting(_ on: Bool) {
        self.reports = on
    }

    /// Every URL's last state, in report order; URLs not yet polled are left out.
    public func snapshot() -> [State] {
        self.order.compactMap { self.states[$0] }
    }

    /// The url→State map as it is now, keyed by each URL as written (``State/rawURL``), for a scrape: a
    /// copy-on-write copy, so this costs the monitor one retain, and the map's next update copies it once.
    /// URLs not yet polled are absent.
    public func statesByURL() -> [String: State] {
        self.states
    }

    /// Reports the current state once, tells the observers (``StateObserver/ticked()``: the history writes
    /// its batch), and hands it to the store if anything changed; returns once the report is done (`urlpoll
    /// once`, the last report on a stop). The snapshot and the dirty flag are taken together, before any
    /// await, so a state that arrives during the report is saved on the next tick; the store encodes and
    /// writes off this actor.
    public func tick() async {
        let snapshot = await self.record()
        guard self.reports else { return }
        await self.reporter.report(snapshot)
    }

    /// A tick's work before its report: the lateness warning, the store, the observers' `ticked`.
    private func record() async -> [State] {
        if self.worstLateness > Self.lateThreshold { self.onLate(self.worstLateness) }
        self.worstLateness = .zero
        let snapshot = self.snapshot()
        if self.keepsTickSnapshots.load(ordering: .relaxed) { self.ticked = self.states }
        self.tickCounter.add(1, ordering: .relaxed)
        if let store = self.store, self.dirty {
            self.dirty = false
            store.submit(snapshot, onError: self.onStoreError)
        }
        for observer in self.observers {
            await observer.ticked()
        }
        return snapshot
    }

    /// Ticks every `interval` of `clock` until cancelled.
    ///
    /// A tick's report runs beside the ticks, never among another tick's: the reporter is called for one
    /// tick at a time, so a `report` hook sees each tick's URLs in order, from `index` 1 to `count`, with no
    /// other tick's calls in between (the README's reset at `index == 1` holds). A tick that comes while the
    /// previous tick's report is still under way (a `report` hook waiting on `urlpoll.http` longer than
    /// `interval`) skips its report, and `onReportSkipped` counts it; its store write and the observers'
    /// `ticked` (the history's batch) still happen on time. Skipping rather than waiting keeps ticks on
    /// their schedule: a late tick would report a stale snapshot, and the ticks held back meanwhile would
    /// then all come at once.
    public func run<C: Clock>(every interval: Duration, clock: C) async where C.Duration == Duration {
        await withDiscardingTaskGroup { group in
            var ticks = Ticks(every: interval, clock: clock)
            while let missed = await ticks.next() {
                self.skipped(missed)
                let snapshot = await self.record()
                guard self.reports else { continue }
                guard !self.reportUnderWay else {
                    self.skippedReports += 1
                    self.onReportSkipped(self.skippedReports)
                    continue
                }
                self.reportUnderWay = true
                let reporter = self.reporter
                group.addTask {
                    await reporter.report(snapshot)
                    await self.reportEnded()
                }
            }
        }
    }

    /// A tick whose report runs beside the caller, as in ``run(every:clock:)``: records the tick and returns
    /// its report to run on a task of the caller's, or nil when this monitor does not report now or the
    /// previous tick's report is still under way (then counted as skipped). The shared schedule's leader
    /// loop ticks so, for its heartbeat must not wait on a `report` hook.
    public func tickBeside() async -> (@Sendable () async -> Void)? {
        let snapshot = await self.record()
        guard self.reports else { return nil }
        guard !self.reportUnderWay else {
            self.skippedReports += 1
            self.onReportSkipped(self.skippedReports)
            return nil
        }
        self.reportUnderWay = true
        let reporter = self.reporter
        return {
            await reporter.report(snapshot)
            await self.reportEnded()
        }
    }

    /// `count` ticks were missed (``Ticks``: urlpoll or its store was frozen) and their reports are not made
    /// up: counted as skipped, as a tick that comes during a report is. Called on every tick, with 0 for a
    /// tick on time, which ends a lateness episode.
    public func skipped(_ count: Int) {
        guard count > 0 else {
            self.missing = false
            return
        }
        guard self.reports else { return }
        self.skippedReports += count
        self.onTicksMissed(count, !self.missing)
        self.missing = true
    }

    private func reportEnded() {
        self.reportUnderWay = false
    }
}
