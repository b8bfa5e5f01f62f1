import PostgresNIO

extension PostgresStore {
    /// The latest `limit` changes of all URLs together, newest first: what ``HistoryStore/latestChanges(limit:)``
    /// answers for a SQLite store, read from `urlpoll_changes` (every instance's changes; a URL retired from the
    /// script keeps its changes until its row goes).
    /// - Throws: ``HistoryError`` in words when PostgreSQL cannot be reached or read.
    public func latestChanges(limit: Int) async throws(HistoryError) -> [HistoryChange] {
        let limit = max(0, limit)
        return try await self.attempt("read the latest changes") {
            let rows = try await self.client.query(
                """
                SELECT t.url, t.ordinal, c.at, c.from_state, c.from_status, c.to_state, c.to_status, c.detail
                FROM urlpoll_changes c JOIN urlpoll_targets t ON t.id = c.target_id
                ORDER BY c.at DESC, c.target_id DESC, c.version DESC LIMIT \(limit)
                """, logger: Self.quiet)
            var changes: [HistoryChange] = []
            for try await row in rows {
                let (url, ordinal, at, from, fromStatus, to, toStatus, detail) = try row.decode(
                    (String, Int, Double, String?, String?, String, String, String?).self)
                changes.append(
                    HistoryChange(
                        url: url, ordinal: ordinal, at: at, from: from.flatMap(Health.init(rawValue:)),
                        fromStatus: fromStatus, to: Health(rawValue: to) ?? .down, toStatus: toStatus, detail: detail))
            }
            return changes
        }
    }
}

// The fleet's history, read as ``HistoryStore`` reads a `--data` file, with the same shapes: every instance's
// polls and changes, whichever instance polled the URL. Minutes are `urlpoll_rollups`; hours are the minutes
// summed by hour, with `urlpoll_rollups_hour` (the minutes a prune took out) added; days are the hours summed
// by UTC day. PostgreSQL keeps no latency sketch: a rollup's `sketch` is empty (no percentile).
extension PostgresStore {
    /// The rows of `urlpoll_rollups` and `urlpoll_rollups_hour` for the targets `targets` selects (SQL over
    /// `urlpoll_targets`, aliased `t`) from `first` on, summed by buckets of `width` seconds (3,600 or
    /// 86,400): `target_id, start, polls, failures, degraded, latency_sum, latency_max`.
    private static func buckets(width: Int64, from first: Int64, to last: Int64, where targets: String)
        -> PostgresQuery
    {
        PostgresQuery(
            unsafeSQL: """
                WITH r AS (
                    SELECT target_id, start, polls, failures, degraded, latency_sum, latency_max FROM urlpoll_rollups
                    WHERE start >= $1 AND start <= $2 AND target_id IN (SELECT t.id FROM urlpoll_targets t WHERE \(targets))
                    UNION ALL
                    SELECT target_id, start, polls, failures, degraded, latency_sum, latency_max
                    FROM urlpoll_rollups_hour
                    WHERE start >= $1 AND start <= $2 AND target_id IN (SELECT t.id FROM urlpoll_targets t WHERE \(targets)))
                SELECT target_id, start - start % \(width), sum(polls)::bigint, sum(failures)::bigint,
                    sum(degraded)::bigint, sum(latency_sum)::float8, max(latency_max)::float8
                FROM r GROUP BY target_id, start - start % \(width) ORDER BY target_id, start - start % \(width)
                """,
            binds: {
                var binds = PostgresBindings()
                binds.append(first)
                binds.append(last)
                return binds
            }())
    }

    private static func rollup(_ row: PostgresRow) throws -> (id: Int64, rollup: Rollup) {
        let (id, start, polls, failures, degraded, sum, max) = try row.decode(
            (Int64, Int64, Int64, Int64, Int64, Double, Double).self)
        var rollup = Rollup(start: start)
        rollup.polls = Int(polls)
        rollup.failures = Int(failures)
        rollup.degraded = Int(degraded)
        rollup.latencySum = sum
        rollup.latencyMax = max
        return (id, rollup)
    }

    /// The first second of the bucket of `width` seconds holding `time` (seconds since the epoch).
    private static func bucket(_ time: Double, width: Int64) -> Int64 {
        let whole = Int64(time.rounded(.down))
        return whole - whole.modulo(width)
    }

    /// What happened to the URL `key` names from `start` to `end` (seconds since the epoch), as
    /// ``HistoryStore/summary(key:from:to:byMinute:)`` answers for a `--data` file: its polls counted in the
    /// minute (`byMinute`) or hour rollups from the one holding `start` to `end`, written by any instance, and
    /// its latest changes in the window (at most ``SQLiteHistoryStore/changesLimit``, oldest first). Nothing
    /// counted for a URL the schedule does not list.
    /// - Throws: ``HistoryError`` in words when PostgreSQL cannot be reached or read.
    public func summary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool) async throws(HistoryError)
        -> HistorySummary
    {
        let width: Int64 = byMinute ? 60 : 3_600
        let first = Self.bucket(start, width: width)
        let last = Int64(end.rounded(.down))
        return try await self.attempt("read the history of \(key.url)") {
            var total = Rollup(start: first)
            let compacted = byMinute ? "" : "UNION ALL SELECT * FROM h"
            let rows = try await self.client.query(
                PostgresQuery(
                    unsafeSQL: """
                        WITH h AS (
                            SELECT polls, failures, degraded, latency_sum, latency_max FROM urlpoll_rollups_hour
                            WHERE target_id = (SELECT id FROM urlpoll_targets WHERE url = $1 AND ordinal = $2)
                                AND start >= $3 AND start <= $4),
                        m AS (
                            SELECT polls, failures, degraded, latency_sum, latency_max FROM urlpoll_rollups
                            WHERE target_id = (SELECT id FROM urlpoll_targets WHERE url = $1 AND ordinal = $2)
                                AND start >= $3 AND start <= $4),
                        r AS (SELECT * FROM m \(compacted))
                        SELECT 0::bigint, 0::bigint, coalesce(sum(polls), 0)::bigint,
                            coalesce(sum(failures), 0)::bigint, coalesce(sum(degraded), 0)::bigint,
                            coalesce(sum(latency_sum), 0)::float8, coalesce(max(latency_max), 0)::float8
                        FROM r
                        """,
                    binds: {
                        var binds = PostgresBindings()
                        binds.append(key.url)
                        binds.append(key.ordinal)
                        binds.append(first)
                        binds.append(last)
                        return binds
                    }()), logger: Self.quiet)
            for try await row in rows {
                var counted = try Self.rollup(row).rollup
                counted.start = first
                total = counted
            }
            let changes = try await self.client.query(
                """
                SELECT * FROM (
                    SELECT c.at, c.version, c.from_state, c.from_status, c.to_state, c.to_status, c.detail
                    FROM urlpoll_changes c JOIN urlpoll_targets t ON t.id = c.target_id
                    WHERE t.url = \(key.url) AND t.ordinal = \(key.ordinal) AND c.at >= \(start) AND c.at <= \(end)
                    ORDER BY c.at DESC, c.version DESC LIMIT \(SQLiteHistoryStore.changesLimit)) AS latest
                ORDER BY at, version
                """, logger: Self.quiet)
            var found: [HistoryChange] = []
            for try await (at, _, from, fromStatus, to, toStatus, detail) in changes.decode(
                (Double, Int64, String?, String?, String, String, String?).self)
            {
                found.append(
                    HistoryChange(
                        url: key.url, ordinal: key.ordinal, at: at, from: from.flatMap(Health.init(rawValue:)),
                        fromStatus: fromStatus, to: Health(rawValue: to) ?? .down, toStatus: toStatus, detail: detail))
            }
            return HistorySummary(rollup: total, changes: found)
        }
    }

    /// The hour rollups of every listed URL from `start` on, oldest first, keyed by ``HistoryKey``: the
    /// fleet's polls, as ``HistoryStore/hourly(since:)`` answers for a `--data` file.
    /// - Throws: ``HistoryError`` in words when PostgreSQL cannot be reached or read.
    public func hourly(since start: Double) async throws(HistoryError) -> [HistoryKey: [Rollup]] {
        try await self.everyURL(width: 3_600, since: start, what: "read the hourly history")
    }

    /// The day rollups (UTC days) of every listed URL from the day holding `start` on, oldest first, keyed by
    /// ``HistoryKey``, as ``HistoryStore/daily(since:)`` answers for a `--data` file.
    /// - Throws: ``HistoryError`` in words when PostgreSQL cannot be reached or read.
    public func daily(since start: Double) async throws(HistoryError) -> [HistoryKey: [Rollup]] {
        try await self.everyURL(width: 86_400, since: start, what: "read the daily history")
    }

    private func everyURL(width: Int64, since start: Double, what: String) async throws(HistoryError)
        -> [HistoryKey: [Rollup]]
    {
        let first = Self.bucket(start, width: width)
        return try await self.attempt(what) {
            var keys: [Int64: HistoryKey] = [:]
            for try await (id, url, ordinal) in try await self.client.query(
                "SELECT id, url, ordinal FROM urlpoll_targets WHERE NOT retired", logger: Self.quiet
            ).decode((Int64, String, Int).self) {
                keys[id] = HistoryKey(url: url, ordinal: ordinal)
            }
            var out: [HistoryKey: [Rollup]] = [:]
            let rows = try await self.client.query(
                Self.buckets(width: width, from: first, to: Int64.max, where: "NOT t.retired"), logger: Self.quiet)
            for try await row in rows {
                let (id, rollup) = try Self.rollup(row)
                if let key = keys[id] { out[key, default: []].append(rollup) }
            }
            return out
        }
    }

    /// The id of each listed URL's row (`urlpoll_targets.id`): `/status`'s `id` and `GET /status/ID`, the same
    /// on every instance, for as long as the row is kept.
    /// - Throws: ``HistoryError`` in words when PostgreSQL cannot be reached or read.
    public func urlIDs() async throws(HistoryError) -> [HistoryKey: Int64] {
        try await self.attempt("read the URLs' ids") {
            var ids: [HistoryKey: Int64] = [:]
            for try await (id, url, ordinal) in try await self.client.query(
                "SELECT id, url, ordinal FROM urlpoll_targets WHERE NOT retired", logger: Self.quiet
            ).decode((Int64, String, Int).self) {
                ids[HistoryKey(url: url, ordinal: ordinal)] = id
            }
            return ids
        }
    }

    /// The hour rollups of the URL whose row is `id` from `start` on, oldest first; empty for an unknown id.
    /// - Throws: ``HistoryError`` in words when PostgreSQL cannot be reached or read.
    public func hourly(id: Int64, since start: Double) async throws(HistoryError) -> [Rollup] {
        let first = Self.bucket(start, width: 3_600)
        return try await self.attempt("read the hourly history") {
            var out: [Rollup] = []
            let rows = try await self.client.query(
                Self.buckets(width: 3_600, from: first, to: Int64.max, where: "t.id = \(id)"), logger: Self.quiet)
            for try await row in rows { out.append(try Self.rollup(row).rollup) }
            return out
        }
    }

    /// The most rows one statement of ``prune(before:batch:)`` deletes.
    public static let pruneBatch = 5_000

    /// Deletes what the retention no longer keeps, as ``HistoryStore/prune(before:)`` does for a `--data`
    /// file: minute rollups before the hour holding `cutoff.minutes` are summed into `urlpoll_rollups_hour`
    /// (so hours keep counting them) and deleted; hour rollups and changes before `cutoff.hours` are deleted
    /// (seconds since the epoch). In statements of at most `batch` rows, each its own transaction under the
    /// advisory lock ``pruneLock`` (`pg_try_advisory_xact_lock`): one instance prunes at a time, and no
    /// statement holds its row locks for long. An instance that finds the lock taken stops (the other is
    /// pruning).
    /// - Returns: The rows deleted.
    /// - Throws: ``HistoryError`` in words when PostgreSQL cannot be reached or written.
    @discardableResult
    public func prune(before cutoff: (minutes: Double, hours: Double), batch: Int = PostgresStore.pruneBatch)
        async throws(HistoryError) -> Int
    {
        let minutes = Self.bucket(cutoff.minutes, width: 3_600)
        let hours = Int64(cutoff.hours.rounded(.down))
        let batch = max(1, batch)
        let statements: [PostgresQuery] = [
            """
            WITH gone AS (
                DELETE FROM urlpoll_rollups WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM urlpoll_rollups WHERE start < \(minutes) ORDER BY start LIMIT \(batch)))
                RETURNING *),
            kept AS (
                INSERT INTO urlpoll_rollups_hour (target_id, start, polls, failures, degraded, latency_sum, latency_max)
                SELECT target_id, start - start % 3600, sum(polls), sum(failures), sum(degraded), sum(latency_sum),
                    max(latency_max)
                FROM gone WHERE start - start % 3600 >= \(hours) GROUP BY target_id, start - start % 3600
                ON CONFLICT (target_id, start) DO UPDATE SET polls = urlpoll_rollups_hour.polls + EXCLUDED.polls,
                    failures = urlpoll_rollups_hour.failures + EXCLUDED.failures,
                    degraded = urlpoll_rollups_hour.degraded + EXCLUDED.degraded,
                    latency_sum = urlpoll_rollups_hour.latency_sum + EXCLUDED.latency_sum,
                    latency_max = greatest(urlpoll_rollups_hour.latency_max, EXCLUDED.latency_max))
            SELECT count(*)::bigint FROM gone
            """,
            """
            WITH gone AS (
                DELETE FROM urlpoll_rollups_hour WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM urlpoll_rollups_hour WHERE start < \(hours) ORDER BY start LIMIT \(batch)))
                RETURNING 1)
            SELECT count(*)::bigint FROM gone
            """,
            """
            WITH gone AS (
                DELETE FROM urlpoll_changes WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM urlpoll_changes WHERE at < \(cutoff.hours) ORDER BY at LIMIT \(batch)))
                RETURNING 1)
            SELECT count(*)::bigint FROM gone
            """,
        ]
        var deleted = 0
        for statement in statements {
            while true {
                let count = try await self.attempt("prune the history") { () -> Int? in
                    try await self.client.withTransaction(logger: Self.quiet) { connection in
                        let locked =
                            try await connection.query(
                                "SELECT pg_try_advisory_xact_lock(\(Self.pruneLock))", logger: Self.quiet
                            ).decode(Bool.self).first { _ in true } ?? false
                        guard locked else { return nil }
                        var count = 0
                        for try await n in try await connection.query(statement, logger: Self.quiet).decode(
                            Int64.self)
                        {
                            count = Int(n)
                        }
                        return count
                    }
                }
                guard let count else { return deleted }
                deleted += count
                if count < batch { break }
            }
        }
        return deleted
    }
}
