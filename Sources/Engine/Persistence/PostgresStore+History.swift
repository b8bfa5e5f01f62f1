import PostgresNIO

extension PostgresStore {
    /// The latest `limit` changes of all URLs together, newest first, without first results that were up:
    /// what ``HistoryStore/latestChanges(limit:)`` answers for a SQLite store, read from `urlpoll_changes` (every instance's changes; a URL retired from the
    /// script keeps its changes until its row goes).
    /// - Throws: ``HistoryError`` in words when PostgreSQL cannot be reached or read.
    public func latestChanges(limit: Int) async throws(HistoryError) -> [HistoryChange] {
        let limit = max(0, limit)
        return try await self.attempt("read the latest changes") {
            let rows = try await self.client.query(
                """
                SELECT t.url, t.ordinal, c.at, c.from_state, c.from_status, c.to_state, c.to_status, c.detail
                FROM urlpoll_changes c JOIN urlpoll_targets t ON t.id = c.target_id
                WHERE NOT (c.from_state IS NULL AND c.to_state = 'up')
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

// Retention of the fleet's history: what a `--data` file's prune deletes, in bounded batches.
extension PostgresStore {
    /// The most rows one statement of ``prune(before:batch:)`` deletes.
    public static let pruneBatch = 5_000

    /// Deletes what the retention no longer keeps, as ``HistoryStore/prune(before:)`` does for a `--data`
    /// file: minute rollups before the hour holding `cutoff.minutes` are summed into `urlpoll_rollups_hour`
    /// (so hours keep counting them, their latency sketches summed by bucket) and deleted; hour rollups and changes before `cutoff.hours` are deleted
    /// (seconds since the epoch). In statements of at most `batch` rows, each its own transaction (no
    /// statement holds its row locks for long), all under the session-level advisory lock ``pruneLock``
    /// (`pg_try_advisory_lock`), taken once for the run on a connection of its own: one instance prunes at a
    /// time, and no other instance's batches come between a run's. An instance that finds the lock taken
    /// deletes nothing (the other is pruning).
    /// - Returns: The rows deleted.
    /// - Throws: ``HistoryError`` in words when PostgreSQL cannot be reached or written.
    @discardableResult
    public func prune(before cutoff: (minutes: Double, hours: Double), batch: Int = PostgresStore.pruneBatch)
        async throws(HistoryError) -> Int
    {
        let minutes = PostgresHistory.bucket(cutoff.minutes, width: 3_600)
        let hours = Int64(cutoff.hours.rounded(.down))
        let batch = max(1, batch)
        let statements: [PostgresQuery] = [
            """
            WITH gone AS (
                DELETE FROM urlpoll_rollups WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM urlpoll_rollups WHERE start < \(minutes) ORDER BY start LIMIT \(batch)))
                RETURNING *),
            k AS (\(unescaped: PostgresHistory.sketches(of: "gone", width: 3_600, where: "start - start % 3600 >= \(hours)"))),
            kept AS (
                INSERT INTO urlpoll_rollups_hour (target_id, start, polls, failures, degraded, latency_sum, latency_max,
                    sketch)
                SELECT g.target_id, g.at, g.polls, g.failures, g.degraded, g.latency_sum, g.latency_max,
                    coalesce(k.sketch, '{}'::bigint[])
                FROM (
                    SELECT target_id, start - start % 3600 AS at, sum(polls) AS polls, sum(failures) AS failures,
                        sum(degraded) AS degraded, sum(latency_sum) AS latency_sum, max(latency_max) AS latency_max
                    FROM gone WHERE start - start % 3600 >= \(hours) GROUP BY 1, 2) AS g
                LEFT JOIN k USING (target_id, at)
                ON CONFLICT (target_id, start) DO UPDATE SET polls = urlpoll_rollups_hour.polls + EXCLUDED.polls,
                    failures = urlpoll_rollups_hour.failures + EXCLUDED.failures,
                    degraded = urlpoll_rollups_hour.degraded + EXCLUDED.degraded,
                    latency_sum = urlpoll_rollups_hour.latency_sum + EXCLUDED.latency_sum,
                    latency_max = greatest(urlpoll_rollups_hour.latency_max, EXCLUDED.latency_max),
                    sketch = urlpoll_rollups_hour.sketch || EXCLUDED.sketch)
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
        // One session-level lock for the whole run, on a connection of its own (closing it lets the lock go
        // whatever happens): no other instance's batches come between this run's.
        let connection = try await self.connectAlone()
        do {
            let locked = try await self.attempt("prune the history") {
                try await connection.query("SELECT pg_try_advisory_lock(\(Self.pruneLock))", logger: Self.quiet)
                    .decode(Bool.self).first { _ in true } ?? false
            }
            var deleted = 0
            if locked {
                for statement in statements {
                    while true {
                        let count = try await self.attempt("prune the history") { () -> Int in
                            var count = 0
                            for try await n in try await connection.query(statement, logger: Self.quiet).decode(
                                Int64.self)
                            {
                                count = Int(n)
                            }
                            return count
                        }
                        deleted += count
                        if count < batch { break }
                    }
                }
            }
            await self.close(connection)
            return deleted
        } catch {
            await self.close(connection)
            throw error
        }
    }
}
