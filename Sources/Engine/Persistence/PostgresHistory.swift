import Dispatch
import FoundationEssentials
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// PostgresHistory is the fleet's history in a `--store` database as a ``HistoryStore``: what `urlpoll.history`,
/// `GET /status`, `GET /status/ID` and the page read, with the shapes a `--data` file answers, from every
/// instance's writes (each URL's polls, changes and uptime, whichever instance polled it).
///
/// - Minutes are `urlpoll_rollups`; hours are the minutes summed by hour, plus `urlpoll_rollups_hour` (the
///   minutes a prune took out, ``PostgresStore/prune(before:batch:)``); days are the same summed by UTC day.
///   Minutes and hours keep a ``LatencySketch`` (``LatencySketch/packed``, schema version 4), summed by bucket
///   in SQL, so `latency_p95` and `/status`'s percentiles are there as with a `--data` file; the days'
///   rollups carry none (as a `--data` file's).
/// - The ids (``urlIDs()``) are the rows' `urlpoll_targets.id`: the same on every instance.
/// - The polls are written by the schedule's write-back (``PostgresStore/complete(_:now:)``), not through
///   ``write(_:)``; ``generation`` stays 0, so `/status` is made anew every `status_interval`.
///
/// The synchronous reads (the status page's thread-pool work, `urlpoll.history` where Lua cannot suspend)
/// are each one statement on a connection of its own, on a NIO event loop (no Swift task waits on it), given
/// up after ``PostgresStore/statementTimeout`` (or the shorter limit the caller gives); a connection that
/// failed or timed out is replaced on the next read. `urlpoll.history` in a hook that may suspend reads with
/// the async ``readSummary(key:from:to:byMinute:)`` on the store's pool instead, so a server that hangs holds
/// only that hook (``RemoteHistoryStore``).
/// Errors are ``HistoryError``s in words, naming the database without its password.
public final class PostgresHistory: RemoteHistoryStore {
    /// The shared schedule's store, which writes what this reads.
    public let store: PostgresStore
    private let connection = Mutex<PostgresConnection?>(nil)

    public init(store: PostgresStore) {
        self.store = store
    }

    deinit {
        self.connection.withLock { if let open = $0 { Self.close(open) } }
    }

    public var generation: Int { 0 }

    /// Closes `connection` without waiting for the server's goodbye; the connection is kept until it is
    /// closed (postgres-nio requires it).
    private static func close(_ connection: PostgresConnection) {
        let closed: EventLoopFuture<Void> = connection.close()
        closed.whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    struct TimedOut: Error {}

    /// The event loop the reader connections run on: no other work runs there, so a caller on any other
    /// loop can wait for its answer. It lives as long as the process (as NIO's own singleton group does).
    static let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// What `future` gives, waited for on any thread: the caller may be on an event loop of its own (the
    /// script's), where NIO's `wait()` refuses to run; `future` completes on ``loops``, which runs nothing
    /// else, so the wait ends (within the connect or statement time limit).
    static func connected<T: Sendable>(_ future: EventLoopFuture<T>) throws -> T {
        let answer = Mutex<Result<T, any Error>?>(nil)
        let answered = DispatchSemaphore(value: 0)
        future.whenComplete { result in
            answer.withLock { $0 = result }
            answered.signal()
        }
        answered.wait()
        guard let result = answer.withLock({ $0 }) else { throw TimedOut() }
        return try result.get()
    }

    /// The rows `query` answers, on the reader connection (opened if none is open), within `limit` (the
    /// statement time limit when nil).
    func rows(_ what: String, _ query: PostgresQuery, within limit: Duration? = nil) throws(HistoryError)
        -> [PostgresRow]
    {
        let store = self.store
        let limit = limit ?? store.statementTimeout
        do {
            let connection = try self.connection.withLock { current in
                if let open = current, !open.isClosed { return open }
                // The connect counts against the same limit: a server that accepts and never answers (frozen)
                // holds the caller no longer than a statement would.
                let loop = Self.loops.next()
                let connecting = PostgresConnection.connect(
                    on: loop, configuration: store.configuration, id: 1, logger: PostgresStore.quiet)
                let promise = loop.makePromise(of: PostgresConnection.self)
                connecting.cascade(to: promise)
                let timer = loop.scheduleTask(in: .milliseconds(Int64(limit.seconds * 1_000))) {
                    promise.fail(TimedOut())
                    connecting.whenSuccess { Self.close($0) }
                }
                defer { timer.cancel() }
                let made = try Self.connected(promise.futureResult)
                current = made
                return made
            }
            let promise = connection.eventLoop.makePromise(of: PostgresQueryResult.self)
            connection.query(query, logger: PostgresStore.quiet).cascade(to: promise)
            let timer = connection.eventLoop.scheduleTask(in: .milliseconds(Int64(limit.seconds * 1_000))) {
                promise.fail(TimedOut())
            }
            defer { timer.cancel() }
            do {
                return Array(try Self.connected(promise.futureResult))
            } catch let error as TimedOut {
                // The connection may still answer later, out of turn: the next read opens another.
                self.connection.withLock { current in
                    if current === connection { current = nil }
                }
                Self.close(connection)
                throw error
            }
        } catch is TimedOut {
            throw HistoryError(
                "\(store.location): cannot \(what): no answer within \(formatSeconds(limit.seconds)) s (is the server up and reachable, or is the statement waiting for a lock another session holds?)"
            )
        } catch {
            throw HistoryError("\(store.location): cannot \(what): \(PostgresStore.words(error))")
        }
    }

    /// The first second of the bucket of `width` seconds holding `time` (seconds since the epoch).
    static func bucket(_ time: Double, width: Int64) -> Int64 {
        let whole = Int64(time.rounded(.down))
        return whole - whole.modulo(width)
    }

    /// SQL summing the packed sketches (``LatencySketch/packed``) of the rows of `rows` (a CTE with
    /// `target_id`, `start` and `sketch`) by `target_id` and `start - start % width`, as `target_id, at,
    /// sketch`: each bucket once, its counts added.
    static func sketches(of rows: String, width: Int64, where condition: String = "true") -> String {
        """
        SELECT target_id, at, array_agg((b << 32) + n ORDER BY b) AS sketch FROM (
            SELECT target_id, start - start % \(width) AS at, e >> 32 AS b, sum(e & 4294967295)::bigint AS n
            FROM \(rows), unnest(\(rows).sketch) AS e WHERE \(condition) GROUP BY 1, 2, 3) AS counted
        GROUP BY 1, 2
        """
    }

    /// The rollups of the rows `targets` selects (SQL over `urlpoll_targets t`) from `first` on, minutes and
    /// compacted hours together, summed by buckets of `width` seconds (3,600 or 86,400), by row and time:
    /// `target_id, start, polls, failures, degraded, latency_sum, latency_max, sketch` (the sketches summed
    /// when `sketch` is true, else empty: days keep none).
    static func buckets(
        width: Int64, from first: Int64, where targets: String, _ binds: PostgresBindings, sketch: Bool = true
    ) -> PostgresQuery {
        var binds = binds
        let at = "$\(binds.count + 1)"
        binds.append(first)
        let sketches =
            sketch
            ? Self.sketches(of: "r", width: width)
            : "SELECT 0::bigint AS target_id, 0::bigint AS at, '{}'::bigint[] AS sketch WHERE false"
        return PostgresQuery(
            unsafeSQL: """
                WITH ids AS (SELECT t.id FROM urlpoll_targets t WHERE \(targets)),
                r AS (
                    SELECT target_id, start, polls, failures, degraded, latency_sum, latency_max, sketch
                    FROM urlpoll_rollups WHERE start >= \(at) AND target_id IN (SELECT id FROM ids)
                    UNION ALL
                    SELECT target_id, start, polls, failures, degraded, latency_sum, latency_max, sketch
                    FROM urlpoll_rollups_hour WHERE start >= \(at) AND target_id IN (SELECT id FROM ids)),
                g AS (
                    SELECT target_id, start - start % \(width) AS at, sum(polls)::bigint AS polls,
                        sum(failures)::bigint AS failures, sum(degraded)::bigint AS degraded,
                        sum(latency_sum)::float8 AS latency_sum, max(latency_max)::float8 AS latency_max
                    FROM r GROUP BY 1, 2),
                k AS (\(sketches))
                SELECT g.target_id, g.at, g.polls, g.failures, g.degraded, g.latency_sum, g.latency_max,
                    coalesce(k.sketch, '{}'::bigint[])
                FROM g LEFT JOIN k USING (target_id, at) ORDER BY g.target_id, g.at
                """, binds: binds)
    }

    static func rollup(_ row: PostgresRow) throws -> (id: Int64, rollup: Rollup) {
        let (id, start, polls, failures, degraded, sum, max, sketch) = try row.decode(
            (Int64, Int64, Int64, Int64, Int64, Double, Double, [Int64]).self)
        var rollup = Rollup(start: start)
        rollup.polls = Int(polls)
        rollup.failures = Int(failures)
        rollup.degraded = Int(degraded)
        rollup.latencySum = sum
        rollup.latencyMax = max
        rollup.sketch = LatencySketch(packed: sketch)
        return (id, rollup)
    }

    /// Decodes `rows` with `body`, saying what failed in words.
    private func decoded<T>(_ what: String, _ rows: [PostgresRow], _ body: (PostgresRow) throws -> T)
        throws(HistoryError) -> [T]
    {
        do {
            return try rows.map(body)
        } catch {
            throw HistoryError("\(self.store.location): cannot \(what): \(PostgresStore.words(error))")
        }
    }

    /// Every listed URL's state, as the fleet last wrote it.
    public func savedStates() throws(HistoryError) -> [State] {
        let rows = try self.rows(
            "read the fleet's states",
            """
            SELECT url, ordinal, name, status, state, since, code, error, detail, error_count, latency, polls,
                checked_at
            FROM urlpoll_targets WHERE NOT retired AND status IS NOT NULL
            """)
        return try self.decoded("read the fleet's states", rows) { row in
            let (url, ordinal, name) = try row.decode((String, Int, String).self)
            return try PostgresStore.state(from: row, url: url, ordinal: ordinal, name: name, offset: 3)
        }.compactMap { $0 }
    }

    /// Not used: the schedule's write-back (``PostgresStore/complete(_:now:)``) writes each batch's polls,
    /// changes and rollups with its results.
    /// - Throws: ``HistoryError`` always, saying so.
    public func write(_ batch: HistoryBatch) async throws(HistoryError) {
        throw HistoryError(
            "\(self.store.location): the shared schedule's history is written with each batch's results, not apart")
    }

    /// ``PostgresStore/prune(before:batch:)``: one instance at a time, in bounded batches.
    public func prune(before cutoff: (minutes: Double, hours: Double)) async throws(HistoryError) {
        try await self.store.prune(before: cutoff)
    }

    /// Prunes what `retention` no longer keeps (``PostgresStore/prune(before:batch:)``) every `interval`
    /// (10 minutes, as ``HistoryWriter``), from one interval after it starts (after the schema is ready) until
    /// the task is cancelled; every instance runs it and the advisory lock lets one prune at a time. A prune
    /// that fails is logged and tried at the next.
    public func prune(
        keeping retention: HistoryWriter.Retention, every interval: Duration = .seconds(HistoryWriter.pruneInterval),
        logger: Logger
    ) async {
        while true {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            let now = Date().timeIntervalSince1970
            do {
                try await self.store.prune(
                    before: (minutes: now - retention.minutes.seconds, hours: now - retention.hours.seconds))
            } catch {
                if Task.isCancelled { return }
                logger.warning("\(error); older history is kept until the next prune")
            }
        }
    }

    public func summary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool) throws(HistoryError)
        -> HistorySummary
    {
        try self.summary(key: key, from: start, to: end, byMinute: byMinute, within: self.store.statementTimeout)
    }

    /// ``summary(key:from:to:byMinute:)``, each of its two statements given up after `limit`.
    public func summary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool, within limit: Duration)
        throws(HistoryError) -> HistorySummary
    {
        let what = "read the history of \(key.url)"
        let (counted, changes) = Self.summaryQueries(key: key, from: start, to: end, byMinute: byMinute)
        return try self.summary(
            key: key, from: start, byMinute: byMinute, counted: try self.rows(what, counted, within: limit),
            changes: try self.rows(what, changes, within: limit))
    }

    /// ``summary(key:from:to:byMinute:)`` on the store's pool, the calling task suspended (never a thread
    /// blocked) until the answer, ``PostgresStore/statementTimeout`` or the task's cancellation.
    public func readSummary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool)
        async throws(HistoryError)
        -> HistorySummary
    {
        let what = "read the history of \(key.url)"
        let (counted, changes) = Self.summaryQueries(key: key, from: start, to: end, byMinute: byMinute)
        let store = self.store
        let rows = try await store.attempt(what) {
            var counts: [PostgresRow] = []
            for try await row in try await store.client.query(counted, logger: PostgresStore.quiet) {
                counts.append(row)
            }
            var found: [PostgresRow] = []
            for try await row in try await store.client.query(changes, logger: PostgresStore.quiet) {
                found.append(row)
            }
            return (counts, found)
        }
        return try self.summary(key: key, from: start, byMinute: byMinute, counted: rows.0, changes: rows.1)
    }

    public func readHolds(_ key: HistoryKey) async throws(HistoryError) -> Bool {
        let query = Self.holdsQuery(key)
        let store = self.store
        return try await store.attempt("look \(key.url) up") {
            for try await _ in try await store.client.query(query, logger: PostgresStore.quiet) { return true }
            return false
        }
    }

    public func holds(_ key: HistoryKey, within limit: Duration) throws(HistoryError) -> Bool {
        !(try self.rows("look \(key.url) up", Self.holdsQuery(key), within: limit)).isEmpty
    }

    public func holds(_ key: HistoryKey) throws(HistoryError) -> Bool {
        try self.holds(key, within: self.store.statementTimeout)
    }

    /// One row when `urlpoll_targets` has the URL, retired or not; none otherwise.
    static func holdsQuery(_ key: HistoryKey) -> PostgresQuery {
        "SELECT 1 FROM urlpoll_targets WHERE url = \(key.url) AND ordinal = \(key.ordinal) LIMIT 1"
    }

    /// The two statements of a summary: the rollups summed (one row, ``rollup(_:)``'s columns), and the
    /// latest changes in the window.
    static func summaryQueries(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool)
        -> (counted: PostgresQuery, changes: PostgresQuery)
    {
        let width: Int64 = byMinute ? 60 : 3_600
        let first = Self.bucket(start, width: width)
        let last = Int64(end.rounded(.down))
        var binds = PostgresBindings()
        binds.append(key.url)
        binds.append(key.ordinal)
        binds.append(first)
        binds.append(last)
        binds.append(Self.bucket(start, width: 3_600))
        // Minutes and the hours a prune compacted them into (never both for one minute): by minute too, the
        // part of the window whose minutes were pruned is counted from its hours, from the one holding `start`.
        let counted = PostgresQuery(
            unsafeSQL: """
                WITH id AS (SELECT id FROM urlpoll_targets WHERE url = $1 AND ordinal = $2),
                h AS (
                    SELECT target_id, start, polls, failures, degraded, latency_sum, latency_max, sketch
                    FROM urlpoll_rollups_hour WHERE target_id = (SELECT id FROM id) AND start >= $5 AND start <= $4),
                m AS (
                    SELECT target_id, start, polls, failures, degraded, latency_sum, latency_max, sketch
                    FROM urlpoll_rollups WHERE target_id = (SELECT id FROM id) AND start >= $3 AND start <= $4),
                r AS (SELECT * FROM m UNION ALL SELECT * FROM h),
                k AS (\(Self.sketches(of: "r", width: Int64.max)))
                SELECT 0::bigint, $3::bigint, coalesce(sum(polls), 0)::bigint, coalesce(sum(failures), 0)::bigint,
                    coalesce(sum(degraded), 0)::bigint, coalesce(sum(latency_sum), 0)::float8,
                    coalesce(max(latency_max), 0)::float8, coalesce((SELECT sketch FROM k), '{}'::bigint[])
                FROM r
                """, binds: binds)
        let changes: PostgresQuery = """
            SELECT at, from_state, from_status, to_state, to_status, detail FROM (
                SELECT c.at, c.version, c.from_state, c.from_status, c.to_state, c.to_status, c.detail
                FROM urlpoll_changes c JOIN urlpoll_targets t ON t.id = c.target_id
                WHERE t.url = \(key.url) AND t.ordinal = \(key.ordinal) AND c.at >= \(start) AND c.at <= \(end)
                ORDER BY c.at DESC, c.version DESC LIMIT \(SQLiteHistoryStore.changesLimit)) AS latest
            ORDER BY at, version
            """
        return (counted, changes)
    }

    /// The summary the rows of ``summaryQueries(key:from:to:byMinute:)`` answered.
    private func summary(
        key: HistoryKey, from start: Double, byMinute: Bool, counted: [PostgresRow], changes: [PostgresRow]
    )
        throws(HistoryError) -> HistorySummary
    {
        let what = "read the history of \(key.url)"
        let first = Self.bucket(start, width: byMinute ? 60 : 3_600)
        let total = try self.decoded(what, counted) { try Self.rollup($0).rollup }.first ?? Rollup(start: first)
        let found = try self.decoded(what, changes) { row in
            let (at, from, fromStatus, to, toStatus, detail) = try row.decode(
                (Double, String?, String?, String, String, String?).self)
            return HistoryChange(
                url: key.url, ordinal: key.ordinal, at: at, from: from.flatMap(Health.init(rawValue:)),
                fromStatus: fromStatus, to: Health(rawValue: to) ?? .down, toStatus: toStatus, detail: detail)
        }
        return HistorySummary(rollup: total, changes: found)
    }

    public func hourly(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] {
        try self.everyURL(width: 3_600, since: start, what: "read the hourly history")
    }

    public func daily(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] {
        try self.everyURL(width: 86_400, since: start, what: "read the daily history")
    }

    private func everyURL(width: Int64, since start: Double, what: String) throws(HistoryError)
        -> [HistoryKey: [Rollup]]
    {
        let keys = try self.keys(what)
        let rows = try self.rows(
            what,
            Self.buckets(
                width: width, from: Self.bucket(start, width: width), where: "NOT t.retired", .init(),
                sketch: width < 86_400))
        var out: [HistoryKey: [Rollup]] = [:]
        for (id, rollup) in try self.decoded(what, rows, Self.rollup) {
            if let key = keys[id] { out[key, default: []].append(rollup) }
        }
        return out
    }

    private func keys(_ what: String) throws(HistoryError) -> [Int64: HistoryKey] {
        let rows = try self.rows(what, "SELECT id, url, ordinal FROM urlpoll_targets WHERE NOT retired")
        var keys: [Int64: HistoryKey] = [:]
        for (id, key) in try self.decoded(
            what, rows,
            { row in
                let (id, url, ordinal) = try row.decode((Int64, String, Int).self)
                return (id, HistoryKey(url: url, ordinal: ordinal))
            })
        {
            keys[id] = key
        }
        return keys
    }

    /// Each listed URL's row id; empty (and the reason logged by the caller's next read) when PostgreSQL
    /// cannot be read.
    public func urlIDs() -> [HistoryKey: Int64] {
        (try? self.readURLIDs()) ?? [:]
    }

    public func readURLIDs() throws(HistoryError) -> [HistoryKey: Int64] {
        let keys = try self.keys("read the URLs' ids")
        return Dictionary(keys.map { ($1, $0) }) { first, _ in first }
    }

    public func hourly(id: Int64, since start: Double) throws(HistoryError) -> [Rollup] {
        var binds = PostgresBindings()
        binds.append(id)
        let what = "read the hourly history"
        let rows = try self.rows(
            what, Self.buckets(width: 3_600, from: Self.bucket(start, width: 3_600), where: "t.id = $1", binds))
        return try self.decoded(what, rows) { try Self.rollup($0).rollup }
    }

    public func latestChanges(limit: Int) throws(HistoryError) -> [HistoryChange] {
        let what = "read the latest changes"
        let rows = try self.rows(
            what,
            """
            SELECT t.url, t.ordinal, c.at, c.from_state, c.from_status, c.to_state, c.to_status, c.detail
            FROM urlpoll_changes c JOIN urlpoll_targets t ON t.id = c.target_id
            ORDER BY c.at DESC, c.target_id DESC, c.version DESC LIMIT \(max(0, limit))
            """)
        return try self.decoded(what, rows) { row in
            let (url, ordinal, at, from, fromStatus, to, toStatus, detail) = try row.decode(
                (String, Int, Double, String?, String?, String, String, String?).self)
            return HistoryChange(
                url: url, ordinal: ordinal, at: at, from: from.flatMap(Health.init(rawValue:)), fromStatus: fromStatus,
                to: Health(rawValue: to) ?? .down, toStatus: toStatus, detail: detail)
        }
    }
}
