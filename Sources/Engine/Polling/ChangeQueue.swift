import Logging
import ServiceLifecycle
import Synchronization

/// ChangeQueue runs the script's `on_change` hook off the task that reported the change: the monitor hands
/// each change on (``observer(hook:history:)``) and its `update` returns at once, so a poller never waits for
/// a commit of the `--data` store nor for a hook.
///
/// - **After its commit.** With a ``HistoryWriter``, a change's hook runs once the writer has committed the
///   change with its URL's state, or its write failed, or ``commitLimit`` passed since the change was heard,
///   whichever comes first: a crash right after an alert neither repeats it nor misses the recovery. Just
///   before a hook starts, the store marks its change as hooked (``HistoryWriter/markHookStarting(_:)``,
///   marks of hooks starting together in one transaction); a crash after the commit and before that mark
///   has the next start replay the hook (``replay(_:hook:)``, `s.replayed`), once. One task
///   waits for the commits in the order the changes came, each until its own deadline (heard + limit), so a
///   burst of changes committed together waits once, never one limit per change in series; once a wait
///   outlasts the limit (a store locked by another process), changes do not wait until a commit returns
///   (``HistoryWriter/commitTimedOut()``).
/// - **In order per URL, concurrent across URLs.** A URL's hooks run one after another, in the order of its
///   changes; different URLs' run side by side (on the ``ScriptHost``, which interleaves hooks waiting on
///   `urlpoll.http`), so a hook waiting on a slow request holds up only its own URL's later changes.
/// - **Bounded.** At most ``capacity`` changes wait (10,000 by default). When that many are waiting (hooks
///   slower than changes come), a poll that brings one more change waits for room (back-pressure, said once
///   per episode in a warning line); no change is dropped, so no alert is lost.
/// - **On a clean stop** (SIGTERM, SIGINT: graceful shutdown, or ``finish()``) the changes heard are still
///   hooked, for ``stopLimit`` at most; hooks still waiting then are abandoned, and an error line counts them.
public final class ChangeQueue<C: Clock>: Service where C.Duration == Duration {
    /// A change waiting for its hook.
    struct Entry: Sendable {
        let state: State
        let previous: State?
        /// What runs the hook: the script host of the pool that heard the change (a reload's next pool has
        /// its own).
        let hook: any StateObserver
        /// The change's commit, when a writer keeps history.
        let committed: CommitWait?
        let history: HistoryWriter?
        /// When the wait for the commit ends at the latest.
        let deadline: C.Instant
    }

    private struct Queue {
        /// Changes heard and not yet hooked (waiting for their commit, their URL's earlier hooks, or running).
        var count = 0
        /// The changes of URLs whose hook runs now, in order, by ``State/rawURL``; a URL is a key while its
        /// worker runs.
        var byURL: [String: [Entry]] = [:]
        /// Polls waiting for room.
        var waitingForRoom: [CheckedContinuation<Void, Never>] = []
        /// Whether the queue is full now and the warning was said (one line per episode).
        var fullSaid = false
        var finished = false
    }

    /// The most changes waiting for their hook before a poll that brings another waits for room.
    public let capacity: Int
    /// The longest a change's hook waits for the change's commit, from when the change was heard.
    public let commitLimit: Duration
    /// How long a clean stop waits for the hooks still queued.
    public let stopLimit: Duration
    private let clock: C
    private let logger: Logger
    private let queue = Mutex(Queue())
    private let entries: AsyncStream<Entry>
    private let continuation: AsyncStream<Entry>.Continuation
    private let stopping: AsyncStream<Void>
    private let stopContinuation: AsyncStream<Void>.Continuation
    /// Changes yielded to ``entries`` and not yet taken by ``consume()``.
    private let buffered = Atomic<Int>(0)
    /// Hooks a stop abandoned while they ran (their task cancelled at the stop's limit, e.g. waiting on
    /// `urlpoll.http`): counted with the changes never started in the stop's error line.
    private let abandoned = Atomic<Int>(0)

    /// - Parameters:
    ///   - capacity: The most changes waiting before polls wait for room (back-pressure).
    ///   - commitLimit: The longest a hook waits for its change's commit, on `clock`.
    ///   - stopLimit: How long a clean stop runs the hooks still queued, on `clock`.
    public init(
        capacity: Int = 10_000, commitLimit: Duration = .seconds(1), stopLimit: Duration = .seconds(5), clock: C,
        logger: Logger
    ) {
        self.capacity = max(1, capacity)
        self.commitLimit = commitLimit
        self.stopLimit = stopLimit
        self.clock = clock
        self.logger = logger
        (self.entries, self.continuation) = AsyncStream.makeStream()
        (self.stopping, self.stopContinuation) = AsyncStream.makeStream()
    }

    /// Changes heard and not yet hooked.
    public var waiting: Int { self.queue.withLock { $0.count } }

    /// Whether polls that bring a change wait for room now (``capacity`` changes are waiting): what a
    /// lateness warning names as its cause instead of too few pollers.
    public var holdsPollsBack: Bool { self.queue.withLock { !$0.waitingForRoom.isEmpty } }

    /// The monitor's observer that hands `hook`'s changes (its `changed`, the script's `on_change`) to this
    /// queue, and tells `hook` of every poll (`on_result`, which still runs on the poll's task). With
    /// `history`, it is the writer's observer too: each change is queued for its commit before its hook.
    public func observer(hook: any StateObserver, history: HistoryWriter?) -> any StateObserver {
        Handoff(queue: self, hook: hook, history: history)
    }

    private struct Handoff: StateObserver {
        let queue: ChangeQueue
        let hook: any StateObserver
        let history: HistoryWriter?

        func polled(_ state: State, previous: State?) async {
            await self.history?.polled(state, previous: previous)
            await self.hook.polled(state, previous: previous)
        }

        func changed(_ state: State, previous: State?) async {
            let committed = self.history?.changedAwaitingCommit(state, previous: previous)
            await self.queue.enqueue(
                Entry(
                    state: state, previous: previous, hook: self.hook, committed: committed, history: self.history,
                    deadline: self.queue.clock.now.advanced(by: self.queue.commitLimit)))
        }

        func ticked() async {
            await self.history?.ticked()
        }
    }

    /// How far back a start replays hooks that never started (``replay(_:hook:)``): 24 hours. An older
    /// change is not alerted any more; its URL's state is resumed all the same.
    public static var replayWindow: Duration { .seconds(86_400) }
    /// The most hooks a start replays: the latest 1,000 in ``replayWindow``, so that an old database does
    /// not flood the receivers.
    public static var replayLimit: Int { 1_000 }

    /// Queues, before polling starts, the changes of `changes` (oldest first, their states ``State/replayed``)
    /// whose hooks a kill kept from starting, to be hooked by `hook` as changes heard now are: in order per
    /// URL. They are committed and already marked as started (``SQLiteHistoryStore/takeUnstartedChanges(since:limit:)``),
    /// so they wait for no commit; they count toward ``capacity`` without waiting for room.
    public func replay(_ changes: [(state: State, previous: State?)], hook: any StateObserver) {
        for (state, previous) in changes {
            let queued = self.queue.withLock { queue -> Bool in
                if queue.finished { return false }
                queue.count += 1
                return true
            }
            guard queued else { return }
            self.buffered.add(1, ordering: .relaxed)
            self.continuation.yield(
                Entry(
                    state: state, previous: previous, hook: hook, committed: nil, history: nil,
                    deadline: self.clock.now))
        }
    }

    private enum Admission { case queued, full, finished }

    /// Queues `entry`; waits only while ``capacity`` changes are waiting. After ``finish()`` the change is
    /// not hooked (urlpoll is stopping; its state is kept all the same).
    func enqueue(_ entry: Entry) async {
        while true {
            let admission = self.queue.withLock { queue -> (Admission, Bool) in
                if queue.finished { return (.finished, false) }
                guard queue.count < self.capacity else {
                    let say = !queue.fullSaid
                    queue.fullSaid = true
                    return (.full, say)
                }
                queue.count += 1
                return (.queued, false)
            }
            switch admission.0 {
            case .queued:
                self.buffered.add(1, ordering: .relaxed)
                self.continuation.yield(entry)
                return
            case .finished:
                return
            case .full:
                if admission.1 {
                    self.logger.warning(
                        "\(self.capacity) changes are waiting for their on_change hook: hooks are slower than changes come, so polls that bring a change wait for room (none is dropped)"
                    )
                }
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = self.queue.withLock { queue -> Bool in
                        if queue.finished || queue.count < self.capacity { return true }
                        queue.waitingForRoom.append(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
        }
    }

    /// Stops taking changes; those heard are still hooked, within ``stopLimit`` when `limited` (a stop), else
    /// each within its own hook's deadline only (`urlpoll once`, which waits for its hooks as for its polls).
    public func finish(limited: Bool = true) {
        let waiting = self.queue.withLock { queue in
            queue.finished = true
            defer { queue.waitingForRoom = [] }
            return queue.waitingForRoom
        }
        for continuation in waiting { continuation.resume() }
        self.continuation.finish()
        if limited { self.stopContinuation.finish() }
    }

    /// Runs hooks until ``finish()`` or graceful shutdown, then those still queued, for ``stopLimit`` at most.
    public func run() async {
        await withGracefulShutdownHandler {
            let drained = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await self.consume()
                    return true
                }
                group.addTask {
                    // The stop's time limit counts from the stop.
                    for await _ in self.stopping {}
                    try? await self.clock.sleep(for: self.stopLimit, tolerance: nil)
                    return false
                }
                let drained = await group.next() ?? true
                group.cancelAll()
                return drained
            }
            // Counted once the hooks abandoned have returned: those never started, and those cut short.
            let left = self.waiting + self.abandoned.load(ordering: .relaxed)
            if !drained, left > 0 {
                self.logger.error(
                    "\(left) \(left == 1 ? "change's on_change hook was" : "changes' on_change hooks were") not run or cut short: urlpoll stopped, and the hooks queued did not finish within \(formatSeconds(self.stopLimit.seconds)) s"
                )
            }
        } onGracefulShutdown: {
            self.finish()
        }
    }

    /// Waits for each change's commit in the order they came, then hands it to its URL's worker. The changes
    /// committed for their hooks whose hooks start now (their URL's worker is idle) are gathered until no
    /// change is left in the stream, the next one's commit is still to come, or 4,096 are gathered, and
    /// marked as hooked in one transaction (``HistoryWriter/markHooksStarted(_:)``) before their hooks
    /// start: a burst committed together is one more transaction or a few, not one per change.
    private func consume() async {
        await withDiscardingTaskGroup { group in
            var starting: [Entry] = []
            for await entry in self.entries {
                let more = self.buffered.subtract(1, ordering: .relaxed).newValue > 0
                if let committed = entry.committed, !committed.hasEnded {
                    await self.start(&starting, in: &group)
                }
                await self.awaitCommit(of: entry)
                let start = self.queue.withLock { queue -> Bool in
                    if queue.byURL[entry.state.rawURL] != nil {
                        queue.byURL[entry.state.rawURL]!.append(entry)
                        return false
                    }
                    queue.byURL[entry.state.rawURL] = []
                    return true
                }
                if start {
                    if entry.committed != nil, entry.history != nil {
                        starting.append(entry)
                    } else {
                        // Nothing to mark (no history, or a replay marked already): it starts now.
                        group.addTask { await self.work(from: entry, marked: true) }
                    }
                }
                if !more || starting.count >= 4_096 { await self.start(&starting, in: &group) }
            }
            await self.start(&starting, in: &group)
        }
    }

    /// Marks the changes of `starting` committed for their hooks as hooked, in one transaction per writer,
    /// then starts their URLs' workers, and empties `starting`.
    private func start(_ starting: inout [Entry], in group: inout DiscardingTaskGroup) async {
        guard !starting.isEmpty else { return }
        let marked = starting.filter { $0.committed != nil && $0.history != nil }
        if let history = marked.first?.history {
            if marked.allSatisfy({ $0.history === history }) {
                await history.markHooksStarted(marked.map { HistoryChange($0.state, previous: $0.previous) })
            } else {
                for entry in marked {
                    await entry.history?.markHooksStarted([HistoryChange(entry.state, previous: entry.previous)])
                }
            }
        }
        for entry in starting {
            group.addTask { await self.work(from: entry, marked: true) }
        }
        starting.removeAll()
    }

    /// Returns once `entry`'s change is committed, its write failed, or its deadline passed.
    private func awaitCommit(of entry: Entry) async {
        guard let committed = entry.committed else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await self.clock.sleep(until: entry.deadline, tolerance: nil)
                committed.resume(timedOut: true)
            }
            await committed.wait()
            group.cancelAll()
        }
        if committed.timedOut { entry.history?.commitTimedOut() }
    }

    /// Runs the hooks of `first`'s URL, in order, until none is left; `first` is marked as hooked already
    /// when `marked`, and each later change is marked just before its hook.
    private func work(from first: Entry, marked: Bool) async {
        var next: Entry? = first
        var isMarked = marked
        while let entry = next {
            if Task.isCancelled { return }
            defer { isMarked = false }
            if !isMarked, entry.committed != nil, let history = entry.history {
                // The store keeps the change as not hooked until now: a kill before this mark is committed
                // has the restart replay the hook; after it, never.
                await history.markHookStarting(HistoryChange(entry.state, previous: entry.previous))
            }
            await entry.hook.changed(entry.state, previous: entry.previous)
            // A hook that returned because the stop's limit cancelled it did not finish.
            if Task.isCancelled { self.abandoned.add(1, ordering: .relaxed) }
            let resumed: CheckedContinuation<Void, Never>?
            (next, resumed) = self.queue.withLock { queue in
                queue.count -= 1
                var resumed: CheckedContinuation<Void, Never>?
                if !queue.waitingForRoom.isEmpty {
                    resumed = queue.waitingForRoom.removeFirst()
                } else if queue.count <= self.capacity / 2 {
                    // An episode ends once the queue is half empty, not at the first room: a queue hovering at
                    // its bound says so once.
                    queue.fullSaid = false
                }
                let key = entry.state.rawURL
                if let following = queue.byURL[key], !following.isEmpty {
                    queue.byURL[key]!.removeFirst()
                    return (following[0], resumed)
                }
                queue.byURL[key] = nil
                return (nil, resumed)
            }
            resumed?.resume()
        }
    }
}
