import FoundationEssentials
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// HistoryWriter is the one task that writes a ``HistoryStore`` (`--data DIR`). It hears every poll and
/// change from the monitor as a ``StateObserver``, gathers them into one ``HistoryBatch``, and writes the
/// batch in one transaction on each monitor tick: never one transaction per poll.
///
/// Hearing a poll only puts a message on a bounded queue (``capacity`` messages); nothing the monitor does
/// waits for SQLite. When the queue is full (the disk is slower than the polls) or a write fails (a full
/// disk), what could not be written is counted (``lost``, and `onLoss` for the metric
/// `urlpoll_history_lost_total`), one log line says so, and polling goes on.
///
/// A change heard through ``changedAwaitingCommit(_:previous:)`` (the script has `on_change`: its
/// ``ChangeQueue`` calls it) is made durable before its hook runs, so a crash neither loses the state an
/// alert announced nor makes the restart repeat the alert: the ``CommitWait`` returned ends once the writer
/// has committed the change with its URL's state, or its write failed (the queue also ends it at its time
/// limit). The writer commits the changes queued together in one transaction as soon as its queue is empty
/// (group commit), so a burst of changes is a few transactions; polls' rollups stay batched per tick. Other
/// changes are written with the tick's batch.
///
/// Retention: minute rollups are kept for ``Retention/minutes`` (7 days), hour rollups and changes for
/// ``Retention/hours`` (400 days); what is older is pruned every 10 minutes, beside the writes.
///
/// A stop (``finish()``, SIGTERM) writes what is left for ``stopLimit`` at most: then the store is
/// interrupted (``HistoryStore/interrupt()``: another process holding its write lock, a hung disk), what
/// was not written is counted as lost and said in one line, and the stop goes on.
public final class HistoryWriter: StateObserver, Service {
    /// How long rollups are kept.
    public struct Retention: Sendable, Hashable {
        /// Minute rollups (default 7 days).
        public var minutes: Duration = .seconds(7 * 86_400)
        /// Hour rollups and the change log (default 400 days).
        public var hours: Duration = .seconds(400 * 86_400)

        public init() {}
    }

    enum Message: Sendable {
        case polled(State)
        /// A change; `committed` is told once it is committed (or its write failed).
        case changed(State, previous: State?, committed: CommitWait?)
        /// Write the batch; then resume the continuation, if any.
        case tick(CheckedContinuation<Void, Never>?)
    }

    /// The store written.
    public let store: any HistoryStore
    /// The most messages (polls, changes, ticks) waiting to be gathered.
    public let capacity: Int
    public let retention: Retention
    private let messages: AsyncStream<Message>
    private let continuation: AsyncStream<Message>.Continuation
    private let dropped = Atomic<Int>(0)
    /// Messages sent and not yet taken by the writer task: at 0 the changes gathered are committed.
    private let queued = Atomic<Int>(0)
    /// Set when a change's wait outlasted its time limit (``commitTimedOut()``: the store hangs, a lock held
    /// by another process, a slow disk), cleared when the writer's next commit of changes returns: meanwhile
    /// changes do not wait, so a hung store holds alerts back once, for one limit, not a limit per change.
    private let stalled = Atomic<Bool>(false)
    private let failed = Atomic<Int>(0)
    /// The marks of hooks starting (``markHookStarting(_:)``) not written yet, and whether a caller is
    /// writing them (and whether the last write failed: said once).
    private let marks = Mutex<(pending: [(HistoryChange, CommitWait)], flushing: Bool, failing: Bool)>(
        ([], false, false))
    /// Polls and changes not written because the stop's time limit was up (part of ``failed``).
    private let unwritten = Atomic<Int>(0)
    private let now: @Sendable () -> Double
    private let onLoss: @Sendable (Int) -> Void
    let logger: Logger
    /// Where a stop keeps the states it could not write (``unrecordedPath(beside:)``), or nil.
    let unrecordedPath: String?
    /// The newest state of each URL whose write the stop's time limit cut off.
    private let held = Mutex<[HistoryKey: State]>([:])
    /// How long a stop waits for the store (default 3 s) before it interrupts it.
    public let stopLimit: Duration
    /// Set once ``stopLimit`` is up after ``finish()``: nothing more is written.
    private let overdue = Atomic<Bool>(false)
    /// Interrupts the store once ``stopLimit`` is up; cancelled when the writer ends first.
    private let deadline = Mutex<Task<Void, Never>?>(nil)
    /// Seconds between prunes.
    public static let pruneInterval = 600.0

    /// - Parameters:
    ///   - now: The wall clock, seconds since the epoch, for the retention cutoffs.
    ///   - onLoss: Told how many polls or changes could not be written, each time some are lost.
    ///   - stopLimit: How long a stop waits for the store.
    ///   - unrecordedPath: Where a stop keeps the URL states it could not write, for the next start.
    public init(
        store: any HistoryStore, capacity: Int = 65_536, retention: Retention = Retention(),
        stopLimit: Duration = .seconds(3), unrecordedPath: String? = nil,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        onLoss: @escaping @Sendable (Int) -> Void = { _ in }, logger: Logger
    ) {
        self.store = store
        self.capacity = capacity
        self.retention = retention
        self.stopLimit = stopLimit
        self.unrecordedPath = unrecordedPath
        (self.messages, self.continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        self.now = now
        self.onLoss = onLoss
        self.logger = logger
    }

    /// Polls and changes that were not written: the queue was full, or their batch's write failed.
    public var lost: Int {
        self.dropped.load(ordering: .relaxed) + self.failed.load(ordering: .relaxed)
    }

    // MARK: StateObserver (called by the monitor; never waits)

    public func polled(_ state: State, previous: State?) async {
        self.send(.polled(state))
    }

    /// Queues the change, to be written with the tick's batch.
    public func changed(_ state: State, previous: State?) async {
        self.send(.changed(state, previous: previous, committed: nil))
    }

    /// Queues the change to be committed (with its URL's state) as soon as the writer's queue is empty, and
    /// returns what ends once it is committed or its write failed; nil when there is nothing to wait for:
    /// the queue is full (the change is counted as lost), the writer has finished, or an earlier wait timed
    /// out and no commit has returned since (the change is then written with the tick's batch).
    func changedAwaitingCommit(_ state: State, previous: State?) -> CommitWait? {
        guard !self.stalled.load(ordering: .relaxed) else {
            self.send(.changed(state, previous: previous, committed: nil))
            return nil
        }
        let wait = CommitWait()
        return self.send(.changed(state, previous: previous, committed: wait)) ? wait : nil
    }

    /// Marks in the store (``HistoryStore/markHooksStarted(_:)``) that `change`'s `on_change` hook starts,
    /// and returns once the mark is committed or its write failed (a failure is said once per episode in a
    /// warning line: the hook runs all the same, and a restart may then replay it). Marks are committed in
    /// groups: the first caller writes the marks asked for so far in one transaction, and again while more
    /// were asked meanwhile; the others wait for it. Called by ``ChangeQueue`` just before the hook of a
    /// change that waited behind its URL's earlier hook starts (changes that start together are marked by
    /// ``markHooksStarted(_:)``), for changes committed through ``changedAwaitingCommit(_:previous:)``.
    func markHookStarting(_ change: HistoryChange) async {
        // A store that hangs (a commit outlasted its limit) holds no hook back for a mark either.
        guard !self.stalled.load(ordering: .relaxed) else { return }
        let wait = CommitWait()
        let leads = self.marks.withLock { marks -> Bool in
            marks.pending.append((change, wait))
            if marks.flushing { return false }
            marks.flushing = true
            return true
        }
        guard leads else {
            await wait.wait()
            return
        }
        while true {
            let taken = self.marks.withLock { marks -> [(HistoryChange, CommitWait)] in
                if marks.pending.isEmpty { marks.flushing = false }
                defer { marks.pending = [] }
                return marks.pending
            }
            if taken.isEmpty { return }
            await self.writeMarks(taken.map(\.0))
            for (_, wait) in taken { wait.resume() }
        }
    }

    /// Marks in the store, in one transaction, that the `on_change` hooks of `changes` start, and returns once
    /// the marks are committed or their write failed (said once per episode in a warning line: the hooks run
    /// all the same, and a restart may then replay them). ``ChangeQueue`` calls it for the changes whose hooks
    /// start together (a burst committed together), just before they start.
    func markHooksStarted(_ changes: [HistoryChange]) async {
        // While a commit has outlasted its limit (the store hangs, or another process holds its lock), no
        // hook waits for a mark: the changes whose waits timed out are written as hooked by their commit.
        guard !changes.isEmpty, !self.stalled.load(ordering: .relaxed) else { return }
        await self.writeMarks(changes)
    }

    /// Writes the marks of `changes` in one transaction; a failure is said once per episode.
    private func writeMarks(_ changes: [HistoryChange]) async {
        do {
            try await self.store.markHooksStarted(changes)
            self.marks.withLock { $0.failing = false }
        } catch {
            let say = self.marks.withLock { marks in
                defer { marks.failing = true }
                return !marks.failing
            }
            if say {
                self.logger.warning(
                    "\(error.description): the on_change hooks starting now are run, but not marked as started, so a restart may run them again"
                )
            }
        }
    }

    /// Told when a change's wait outlasted its limit: changes do not wait until the next commit returns.
    func commitTimedOut() {
        self.stalled.store(true, ordering: .relaxed)
    }

    public func ticked() async {
        self.send(.tick(nil))
    }

    /// Writes what was heard so far, as a tick does, and returns once it is written (or has failed), or at
    /// once if the queue is full or the writer has finished.
    public func sync() async {
        await withCheckedContinuation { continuation in
            switch self.continuation.yield(.tick(continuation)) {
            case .enqueued: break
            case .dropped, .terminated: continuation.resume()
            @unknown default: continuation.resume()
            }
        }
    }

    /// Queues `message`; returns whether it was queued.
    @discardableResult private func send(_ message: Message) -> Bool {
        self.queued.add(1, ordering: .relaxed)
        switch self.continuation.yield(message) {
        case .enqueued: return true
        case .dropped:
            self.queued.subtract(1, ordering: .relaxed)
            if case .tick = message { return false }  // the next tick writes the batch
            self.dropped.add(1, ordering: .relaxed)
            self.onLoss(1)
            return false
        case .terminated:
            self.queued.subtract(1, ordering: .relaxed)
            return false
        @unknown default:
            return false
        }
    }

    /// Ends the writer: what was heard is written, within ``stopLimit`` (then the store is interrupted and
    /// the rest counted as lost), then ``run()`` returns.
    public func finish() {
        self.continuation.finish()
        self.deadline.withLock { deadline in
            guard deadline == nil else { return }
            let limit = self.stopLimit
            // Weak: the task must not keep the writer, and so its store, open once the writer has ended.
            deadline = Task { [weak self] in
                try? await Task.sleep(for: limit)
                guard let self, !Task.isCancelled else { return }
                self.overdue.store(true, ordering: .relaxed)
                self.store.interrupt()
            }
        }
    }

    // MARK: The writer task

    /// Gathers and writes until ``finish()`` (or graceful shutdown), then writes what is left.
    public func run() async {
        await withGracefulShutdownHandler {
            await self.write()
        } onGracefulShutdown: {
            self.finish()
        }
        self.deadline.withLock { $0?.cancel() }
    }

    private func write() async {
        await self.writeUnrecorded()
        var batch = HistoryBatch()
        // The changes (with their URLs' states) heard since the last commit, and who waits for them.
        var changes = HistoryBatch()
        var waits: [CommitWait] = []
        var lastPrune = -Double.infinity
        var pruning: Task<Void, Never>?
        var reportedDrops = 0
        var lastDropLog = -Double.infinity
        var failing = false
        var goneSaid = false
        for await message in self.messages {
            let left = self.queued.subtract(1, ordering: .relaxed).newValue
            switch message {
            case .polled(let state):
                batch.count(state)
                // Written when it differs from what the store committed (or from this batch's newer state).
                let key = state.historyKey
                if batch.states[key] != nil || self.store.persistedHash(of: key) != state.persistedHash {
                    batch.states[key] = state
                }
            case .changed(let state, let previous, nil):
                batch.changes.append(HistoryChange(state, previous: previous))
            case .changed(let state, let previous, let committed?):
                // Committed with its URL's state before the tick, as soon as the queue is empty.
                let key = state.historyKey
                var change = HistoryChange(state, previous: previous)
                change.hookPending = true
                changes.changes.append(change)
                changes.states[key] = state
                if let held = batch.states[key], held.checkedAt <= state.checkedAt { batch.states[key] = nil }
                waits.append(committed)
            case .tick(let done):
                defer { done?.resume() }
                // The changes first: the tick's states of their URLs are as new or newer.
                await self.commitChanges(&changes, waits, failing: &failing)
                for wait in waits { wait.resume() }
                waits.removeAll()
                self.stalled.store(false, ordering: .relaxed)
                let now = self.now()
                if now - lastDropLog >= 60, self.reportDrops(since: &reportedDrops) { lastDropLog = now }
                await self.commit(&batch, ofTick: true, failing: &failing)
                if let gone = self.store.gone() {
                    if !goneSaid {
                        goneSaid = true
                        self.logger.error(
                            "\(gone): history goes into a file no one can open, and is lost when urlpoll stops; polling goes on (restart urlpoll to start a new store there)"
                        )
                    }
                } else {
                    goneSaid = false
                }
                if now - lastPrune >= Self.pruneInterval {
                    // The last prune has had 10 minutes; it has almost surely ended.
                    await pruning?.value
                    lastPrune = now
                    let cutoff = (
                        minutes: now - self.retention.minutes.seconds, hours: now - self.retention.hours.seconds
                    )
                    let store = self.store
                    let logger = self.logger
                    pruning = Task {
                        do {
                            try await store.prune(before: cutoff)
                        } catch {
                            logger.warning("\(error); older history is kept until the next prune")
                        }
                    }
                }
            }
            // Group commit: the changes gathered are written once nothing more is queued (or when polls
            // keep the queue from emptying, every 4,096 changes).
            if !changes.isEmpty, left <= 0 || changes.changes.count >= 4_096 {
                await self.commitChanges(&changes, waits, failing: &failing)
                for wait in waits { wait.resume() }
                waits.removeAll()
                self.stalled.store(false, ordering: .relaxed)
            }
        }
        await pruning?.value
        _ = self.reportDrops(since: &reportedDrops)
        await self.commitChanges(&changes, waits, failing: &failing)
        for wait in waits { wait.resume() }
        await self.commit(&batch, ofTick: true, failing: &failing)
        let unwritten = self.unwritten.load(ordering: .relaxed)
        if unwritten > 0 {
            self.logger.error(
                "the history store did not answer within \(self.stopLimit.seconds.formatted()) s of the stop (another process holds its write lock, or its disk hangs): \(unwritten.counted("poll or change", "polls and changes")) \(unwritten.agreeing("was", "were")) not recorded (counted in urlpoll_history_lost_total); \(self.keepUnrecorded(Array(self.held.withLock { $0 }.values)))"
            )
        }
    }

    /// Keeps the newest state of each URL in `batch`, which the stop could not write.
    private func hold(_ batch: HistoryBatch) {
        self.held.withLock { held in
            for (key, state) in batch.states where (held[key]?.checkedAt ?? -.infinity) <= state.checkedAt {
                held[key] = state
            }
        }
    }

    /// Commits `changes` (``commit(_:failing:)``), whose waits are `waits`, in the same order. A change whose
    /// wait timed out had its hook run without a mark (``ChangeQueue``): it is written as hooked when the
    /// wait timed out before this commit, and marked just after it when the wait timed out during it, so a
    /// restart does not run the hook again.
    private func commitChanges(_ changes: inout HistoryBatch, _ waits: [CommitWait], failing: inout Bool) async {
        for (i, wait) in waits.enumerated() where i < changes.changes.count && wait.timedOut {
            changes.changes[i].hookPending = false
        }
        let written = changes.changes
        await self.commit(&changes, ofTick: false, failing: &failing)
        let late = zip(written, waits).filter { $0.0.hookPending && $0.1.timedOut }.map(\.0)
        if !late.isEmpty { await self.writeMarks(late) }
    }

    /// Says how many polls or changes the full queue dropped since `reported`, if any; returns whether it did.
    private func reportDrops(since reported: inout Int) -> Bool {
        let drops = self.dropped.load(ordering: .relaxed)
        guard drops > reported else { return false }
        self.logger.error(
            "history falls behind: its queue of \(self.capacity) messages was full, so \((drops - reported).counted("poll or change", "polls or changes")) \((drops - reported).agreeing("was", "were")) not recorded (\(self.lost) in all; urlpoll_history_lost_total); polling goes on"
        )
        reported = drops
        return true
    }

    /// Writes `batch` in one transaction and empties it. On failure its polls and changes are counted as
    /// lost, its URLs' states are written again with their next poll, and one log line says why (again only
    /// after writes have worked once more).
    /// `ofTick`: whether `batch` is a tick's (else the changes committed before their `on_change`), for
    /// the words of that line.
    private func commit(_ batch: inout HistoryBatch, ofTick: Bool, failing: inout Bool) async {
        guard !batch.isEmpty else { return }
        let taken = batch
        batch = HistoryBatch()
        let count = taken.polls + taken.changes.count
        guard !self.overdue.load(ordering: .relaxed) else {
            // The stop's time limit is up: said once, at the end.
            self.failed.add(count, ordering: .relaxed)
            self.unwritten.add(count, ordering: .relaxed)
            self.onLoss(count)
            self.hold(taken)
            return
        }
        do {
            try await self.store.write(taken)
            if failing {
                failing = false
                self.logger.notice(
                    "history is written again (\(self.lost.counted("poll or change", "polls or changes")) \(self.lost.agreeing("was", "were")) not recorded in all)"
                )
            }
        } catch {
            self.failed.add(count, ordering: .relaxed)
            self.onLoss(count)
            if self.overdue.load(ordering: .relaxed) {
                self.unwritten.add(count, ordering: .relaxed)
                self.hold(taken)
            } else if !failing {
                failing = true
                let what =
                    ofTick
                    ? "\(count.counted("poll or change", "polls and changes")) of this tick"
                    : "\(count.counted("change")) awaiting on_change (with \(count.agreeing("its URL's state", "their URLs' states")))"
                self.logger.error(
                    "\(error.description): \(what) \(count.agreeing("is", "are")) not recorded (counted in urlpoll_history_lost_total, as is what fails until a write works again); polling goes on, and writing is tried again on every tick"
                )
            }
        }
    }
}

extension HistoryWriter {
    /// Makes `urlpoll_history_lost_total` in `registry`: polls and changes the history could not write.
    public static func lossCounter(in registry: PrometheusCollectorRegistry) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "urlpoll", metricName: "history_lost", unitName: "total",
                helpText:
                    "Polls and changes not written to the --data store: its queue was full, or a write failed (a full disk)."
            ))
    }
}
