/// HistoryStore is where urlpoll keeps what it has seen (`--data DIR`): each URL's current state, every
/// change, and rollups of its polls per minute and per hour. ``SQLiteHistoryStore`` is the one kept in a
/// file (`--data`); ``PostgresHistory`` reads the one a fleet shares (`--store`), which the schedule's
/// write-back writes.
///
/// One writer (``HistoryWriter``) calls ``write(_:)`` and ``prune(before:)``; readers (`urlpoll.history`,
/// `GET /status`) call the rest from any task, at the same time as the writer.
public protocol HistoryStore: Sendable {
    /// Counts the batches written so far: it grows once each ``write(_:)`` has committed, so a reader can
    /// tell whether what it read before may have changed since.
    var generation: Int { get }

    /// Each URL's last written state, for the monitor to resume from after a restart.
    func savedStates() throws(HistoryError) -> [State]

    /// Writes one tick's batch, all of it or none of it (one transaction).
    func write(_ batch: HistoryBatch) async throws(HistoryError)

    /// Deletes minute rollups older than `cutoff.minutes` and hour and day rollups and changes older than
    /// `cutoff.hours` (seconds since the epoch).
    func prune(before cutoff: (minutes: Double, hours: Double)) async throws(HistoryError)

    /// What happened to the URL `key` names from `start` to `end` (seconds since the epoch): its polls
    /// counted in the minute (`byMinute`) or hour rollups from the one holding `start` to `end`, and its
    /// latest changes in the window (oldest first). Nothing counted for a key the store does not hold.
    func summary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool) throws(HistoryError)
        -> HistorySummary

    /// The hour rollups of every URL from `start` on, oldest first, keyed by ``HistoryKey``.
    func hourly(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]]

    /// The day rollups (UTC days; polls, failures and degraded, no latency sketch) of every URL from the
    /// day holding `start` on, oldest first, keyed by ``HistoryKey``.
    func daily(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]]

    /// The id of each URL the store holds rows for: a number that names the URL's rows for as long as the
    /// store keeps them (`/status`'s `id`, `GET /status/ID`).
    func urlIDs() -> [HistoryKey: Int64]

    /// ``urlIDs()``, or why they cannot be read (a store that does not answer), for `GET /status/ID`: an
    /// id that cannot be looked up is not an unknown id.
    func readURLIDs() throws(HistoryError) -> [HistoryKey: Int64]

    /// The hour rollups of the URL whose id is `id` from `start` on, oldest first; empty for an unknown id.
    func hourly(id: Int64, since start: Double) throws(HistoryError) -> [Rollup]

    /// Why what the store writes no longer reaches the place it was opened at, or nil; the writer asks on
    /// every tick.
    func gone() -> String?

    /// The ``State/persistedHash`` of the URL's state as the store last committed it, or nil when it holds
    /// none (or does not keep the hashes: then the writer writes the state of every poll). The writer asks
    /// on every poll, to write a state only when it changed; it keeps no map of its own.
    func persistedHash(of key: HistoryKey) -> Int?

    /// Whether the store holds rows for the URL `key` names (it was polled, or listed and written, once):
    /// what tells `urlpoll.history` a URL the script no longer lists from one it never had.
    func holds(_ key: HistoryKey) throws(HistoryError) -> Bool

    /// The latest `limit` changes of all URLs together, newest first (the status page's "Latest changes"),
    /// leaving out each URL's first result when it was up (`from` nil, `to` up): that is no incident, and at
    /// a start or a reload that adds many URLs those would push every real change out of the list.
    func latestChanges(limit: Int) throws(HistoryError) -> [HistoryChange]

    /// Marks `changes` (committed with ``HistoryChange/hookPending``, matched by URL and `at`) as having their
    /// `on_change` hooks started, all in one transaction; called just before those hooks start, so that a
    /// restart replays only hooks that never started. A store that replays nothing does nothing.
    func markHooksStarted(_ changes: [HistoryChange]) async throws(HistoryError)

    /// Makes the write running, and every later one, fail at once (it waits no longer for a lock another
    /// process holds, nor for a hung disk): the writer calls it when its stop's time limit is up.
    func interrupt()
}

extension HistoryStore {
    /// Why what the store writes no longer reaches the place it was opened at, in words (its file was
    /// deleted or replaced), or nil while it does. A store with no such place answers nil.
    public func gone() -> String? { nil }

    /// Nothing: a store whose writes end by themselves has nothing to interrupt.
    public func interrupt() {}

    /// Whether ``urlIDs()`` has `key`.
    public func holds(_ key: HistoryKey) throws(HistoryError) -> Bool { self.urlIDs()[key] != nil }

    /// ``urlIDs()``: a store whose ids are in memory (`--data`) always has them.
    public func readURLIDs() throws(HistoryError) -> [HistoryKey: Int64] { self.urlIDs() }

    /// Nothing: a store that does not replay hooks (`--store`) keeps no marks.
    public func markHooksStarted(_ changes: [HistoryChange]) async throws(HistoryError) {}

    /// Nil: a store that keeps no hashes has every poll's state written.
    public func persistedHash(of key: HistoryKey) -> Int? { nil }
}

/// HistoryError says in words why the store could not be opened, written or read.
public struct HistoryError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// One change of a URL's state or status: the incident log's row.
public struct HistoryChange: Sendable, Hashable {
    /// The URL, as reports show it (credentials redacted).
    public var url: String
    /// Its number among URLs that print alike (``Target/ordinal``).
    public var ordinal: Int
    /// When the new status was first seen (seconds since the epoch).
    public var at: Double
    /// The state before (`up`, `degraded`, `down`), nil for a URL's first result.
    public var from: Health?
    /// The status before (`"200 OK"`, `"refused"`), nil for a URL's first result.
    public var fromStatus: String?
    /// The new state.
    public var to: Health
    /// The new status.
    public var toStatus: String
    /// The new state's error text, when it failed or was degraded; at most ``Swift/String/detailLimit``
    /// bytes when made from a state (cut with "…").
    public var detail: String?
    /// Whether an `on_change` hook is to run for this change once it is committed (the script has one): the
    /// `--data` store then keeps the change as not hooked yet until ``HistoryStore/markHooksStarted(_:)``,
    /// so that a restart replays a hook a kill kept from starting. False for other changes, which are never
    /// replayed.
    public var hookPending = false

    /// The key of the URL's rows in the store.
    public var key: HistoryKey { HistoryKey(url: self.url, ordinal: self.ordinal) }

    public init(
        url: String, ordinal: Int = 1, at: Double, from: Health?, fromStatus: String?, to: Health, toStatus: String,
        detail: String?
    ) {
        self.url = url
        self.ordinal = ordinal
        self.at = at
        self.from = from
        self.fromStatus = fromStatus
        self.to = to
        self.toStatus = toStatus
        self.detail = detail
    }

    /// The change from `previous` to `state`.
    public init(_ state: State, previous: State?) {
        self.init(
            url: state.url, ordinal: state.ordinal, at: state.checkedAt, from: previous?.health,
            fromStatus: previous?.status,
            to: state.health, toStatus: state.status,
            detail: (state.detail ?? state.error)?.limited(toUTF8Bytes: String.detailLimit))
    }
}

/// Rollup counts one URL's polls in one minute or one hour.
public struct Rollup: Sendable, Hashable {
    /// The bucket's first second (seconds since the epoch, a multiple of 60 or 3,600).
    public var start: Int64
    /// Polls in the bucket.
    public var polls = 0
    /// Polls whose state was down.
    public var failures = 0
    /// Polls whose state was degraded.
    public var degraded = 0
    /// The sum of the latencies of the polls that were not down, in seconds.
    public var latencySum = 0.0
    /// The longest latency of a poll that was not down, in seconds.
    public var latencyMax = 0.0
    /// The latencies of the polls that were not down.
    public var sketch = LatencySketch()

    public init(start: Int64) {
        self.start = start
    }

    /// Counts one poll.
    public mutating func add(_ state: State) {
        self.add(health: state.health, seconds: state.latency.seconds)
    }

    /// Counts one poll whose state was `health` and which took `seconds` (counted only when not down).
    mutating func add(health: Health, seconds: Double) {
        self.polls += 1
        switch health {
        case .down:
            self.failures += 1
            return
        case .degraded: self.degraded += 1
        case .up: break
        }
        self.latencySum += seconds
        self.latencyMax = max(self.latencyMax, seconds)
        self.sketch.add(seconds: seconds)
    }

    /// Adds `other`'s polls (another rollup of the same URL).
    public mutating func merge(_ other: Rollup) {
        self.polls += other.polls
        self.failures += other.failures
        self.degraded += other.degraded
        self.latencySum += other.latencySum
        self.latencyMax = max(self.latencyMax, other.latencyMax)
        self.sketch.merge(other.sketch)
    }

    /// The share of polls that were not down (0…1), nil without polls.
    public var uptime: Double? {
        self.polls > 0 ? Double(self.polls - self.failures) / Double(self.polls) : nil
    }
}

/// HistoryBatch is what one tick writes: the states that changed since the last, the changes, and the
/// polls to count into minute, hour and day rollups.
///
/// Polls counted with ``count(_:)`` are kept as they came, 24 bytes each plus one map entry per URL, and
/// rolled up by the store as it writes them (``forEachCounted(_:)``): at 100,000 URLs a tick's batch holds
/// tens of thousands of polls, and a rollup per URL per minute, hour and day (each with its own maps) took
/// some 900 bytes per poll where these take about 60.
public struct HistoryBatch: Sendable {
    /// URL (``State/historyKey``) → its latest state, for URLs whose state changed since the last batch
    /// (see ``State/persists(differently:)``).
    public var states: [HistoryKey: State] = [:]
    /// The changes, oldest first.
    public var changes: [HistoryChange] = []
    /// URL (``State/historyKey``) → minute start → rollups written as they are (added to what the store
    /// holds): for rollups made elsewhere (a migration, the bench's simulated days). Polls are counted with
    /// ``count(_:)`` instead.
    public var minutes: [HistoryKey: [Int64: Rollup]] = [:]
    /// URL (``State/historyKey``) → hour start → rollups written as they are, as ``minutes``.
    public var hours: [HistoryKey: [Int64: Rollup]] = [:]
    /// URL (``State/historyKey``) → day start (UTC) → rollups written as they are, as ``minutes``.
    public var days: [HistoryKey: [Int64: Rollup]] = [:]
    /// Polls counted in this batch (by ``count(_:)`` and in the rollups put in directly).
    public var polls = 0

    /// One poll counted by ``count(_:)``, linked to the same URL's next one.
    struct CountedPoll: Sendable {
        /// When it finished, seconds since the epoch.
        var at: Double
        /// How long it took, in seconds.
        var seconds: Double
        /// The index in ``counted`` of the same URL's next poll, or -1.
        var next: Int32
        var health: Health
    }

    /// The polls ``count(_:)`` kept, in the order they came.
    private var counted: [CountedPoll] = []
    /// URL → the indexes in ``counted`` of its first and its last poll.
    private var countedURLs: [HistoryKey: (first: Int32, last: Int32)] = [:]

    public init() {}

    /// The URLs whose polls ``count(_:)`` counted.
    public var countedKeys: Dictionary<HistoryKey, (first: Int32, last: Int32)>.Keys { self.countedURLs.keys }

    public var isEmpty: Bool { self.states.isEmpty && self.changes.isEmpty && self.polls == 0 }

    /// Counts one poll, to be rolled up into its minute, hour and day (UTC) when the batch is written.
    public mutating func count(_ state: State) {
        let index = Int32(self.counted.count)
        self.counted.append(
            CountedPoll(at: state.checkedAt, seconds: state.latency.seconds, next: -1, health: state.health))
        let key = state.historyKey
        if let chain = self.countedURLs[key] {
            self.counted[Int(chain.last)].next = index
            self.countedURLs[key] = (chain.first, index)
        } else {
            self.countedURLs[key] = (index, index)
        }
        self.polls += 1
    }

    /// Calls `body` once for each URL whose polls ``count(_:)`` counted, in the order `order` gives them
    /// (the store's row ids, so that its B-trees are written front to back), with the URL's `order` and
    /// its polls rolled up per minute, per hour and per UTC day (each list in the order its buckets were
    /// first seen, one rollup per bucket). The lists are reused from one URL to the next: `body` must not
    /// keep them.
    public func forEachCounted<Order: Comparable>(
        by order: (HistoryKey) throws -> Order,
        _ body: (Order, _ minutes: [Rollup], _ hours: [Rollup], _ days: [Rollup]) throws -> Void
    ) rethrows {
        var ordered: [(order: Order, first: Int32)] = []
        ordered.reserveCapacity(self.countedURLs.count)
        for (key, chain) in self.countedURLs { ordered.append((try order(key), chain.first)) }
        ordered.sort { $0.order < $1.order }
        var minutes: [Rollup] = []
        var hours: [Rollup] = []
        var days: [Rollup] = []
        func add(_ poll: CountedPoll, start: Int64, to rollups: inout [Rollup]) {
            // A URL's polls in one batch fall in one or two buckets, nearly always the last one.
            if let i = rollups.lastIndex(where: { $0.start == start }) {
                rollups[i].add(health: poll.health, seconds: poll.seconds)
            } else {
                var rollup = Rollup(start: start)
                rollup.add(health: poll.health, seconds: poll.seconds)
                rollups.append(rollup)
            }
        }
        for (order, first) in ordered {
            minutes.removeAll(keepingCapacity: true)
            hours.removeAll(keepingCapacity: true)
            days.removeAll(keepingCapacity: true)
            var index = Int(first)
            while index >= 0 {
                let poll = self.counted[index]
                let at = Int64(poll.at.rounded(.down))
                add(poll, start: at - at.modulo(60), to: &minutes)
                add(poll, start: at - at.modulo(3_600), to: &hours)
                add(poll, start: at - at.modulo(86_400), to: &days)
                index = Int(poll.next)
            }
            try body(order, minutes, hours, days)
        }
    }
}

extension Int64 {
    /// The remainder of dividing by `n`, from 0 to n − 1 also for negative numbers.
    func modulo(_ n: Int64) -> Int64 {
        let r = self % n
        return r < 0 ? r + n : r
    }
}

/// HistorySummary is what `urlpoll.history(url, seconds)` returns.
public struct HistorySummary: Sendable, Hashable {
    /// The polls counted, and their rollup.
    public var rollup: Rollup
    /// The changes in the window, oldest first.
    public var changes: [HistoryChange]

    public init(rollup: Rollup, changes: [HistoryChange]) {
        self.rollup = rollup
        self.changes = changes
    }

    /// No poll and no change in the window.
    public var isEmpty: Bool { self.rollup.polls == 0 && self.changes.isEmpty }
}

extension State {
    /// Whether the store must write `self` when it last wrote `written`: any field a restart resumes
    /// differs, except the ones every poll moves (latency, polls, checked_at), which are written along.
    public func persists(differently written: State?) -> Bool {
        guard let written else { return true }
        return self.persisted != written.persisted
    }

    /// The fields ``persists(differently:)`` compares.
    struct Persisted: Hashable, Sendable {
        var status: String
        var health: Health
        var errorCount: Int
        var since: Double
        var code: Int?
        var error: String?
        var detail: String?
        var name: String
        var ordinal: Int
    }

    var persisted: Persisted {
        Persisted(
            status: self.status, health: self.health, errorCount: self.errorCount, since: self.since, code: self.code,
            error: self.error, detail: self.detail, name: self.name, ordinal: self.ordinal)
    }

    /// A 64-bit hash of the fields ``persists(differently:)`` compares (for this process only: Swift seeds
    /// its hashes per process). The store keeps it beside each URL's row id, so the writer tells a changed
    /// state from one already written without a map of its own: keeping each URL's last State kept a copy of
    /// all its fields (phase timings, HTTP facts…) once the monitor had a newer one, and even the compared
    /// fields alone take some 350 bytes of map per URL. Two different states hash alike with a chance of
    /// about 1 in 2^64; the second is then written with the URL's next change.
    public var persistedHash: Int { self.persisted.hashValue }
}
