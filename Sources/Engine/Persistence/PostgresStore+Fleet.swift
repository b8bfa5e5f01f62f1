import FoundationEssentials
import PostgresNIO

extension PostgresStore {
    /// Which script the schedule follows, and whether it is still run: what a beat
    /// (``beat(scriptHash:alive:now:)``) finds.
    public struct Following: Sendable, Hashable {
        /// The script the schedule follows and who loaded it; nil before any instance listed its URLs.
        public var schedule: Previous?
        /// Whether an instance whose heartbeat is recent runs that script (its loader or another).
        public var followed: Bool
        /// The script of the live instance that loaded its script last (ties: the lowest id); nil when no
        /// instance is live.
        public var newest: String?

        public init(schedule: Previous?, followed: Bool, newest: String?) {
            self.schedule = schedule
            self.followed = followed
            self.newest = newest
        }
    }

    /// Beats this instance's heartbeat (registering it, running `scriptHash`, if it was not), removes the
    /// rows of instances silent for longer than ``instanceRowLifetime``, and says which script the schedule
    /// follows, whether an instance whose heartbeat is younger than `alive` seconds runs it, and which
    /// script is the newest live one. One statement.
    public func beat(scriptHash: String, alive: Double, now: Double? = nil) async throws(HistoryError) -> Following {
        let pid = Int32(ProcessInfo.processInfo.processIdentifier)
        let host = ProcessInfo.processInfo.hostName
        return try await self.attempt("record this instance's heartbeat") {
            try await self.client.withConnection { connection in
                try await connection.run(
                    """
                    WITH t AS (SELECT coalesce(\(now)::float8, extract(epoch from statement_timestamp())::float8) AS now),
                    beat AS (
                        INSERT INTO urlpoll_instances (id, host, pid, script_hash, started_at, heartbeat_at, loaded_at)
                        SELECT \(self.instance), \(host), \(pid), \(scriptHash), t.now, t.now, t.now FROM t
                        ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at,
                            script_hash = EXCLUDED.script_hash)
                    DELETE FROM urlpoll_instances
                    WHERE id <> \(self.instance) AND heartbeat_at < (SELECT now FROM t) - \(Self.instanceRowLifetime.seconds)::float8
                    """, logger: Self.quiet)
                return try await Self.following(on: connection, alive: alive, now: now)
            }
        }
    }

    /// How long the row of an instance that stopped without a word (killed, its machine gone) stays in
    /// `urlpoll_instances` after its last heartbeat: an hour. An instance that stops cleanly removes its
    /// own at once (``leave(within:releasing:)``).
    public static var instanceRowLifetime: Duration { .seconds(3_600) }

    /// What the schedule follows, read on `connection` (``Following``).
    static func following(on connection: PostgresConnection, alive: Double, now: Double?) async throws
        -> Following
    {
        let rows = try await connection.query(
            """
            WITH t AS (SELECT coalesce(\(now)::float8, extract(epoch from statement_timestamp())::float8) AS now),
            live AS (SELECT id, script_hash, coalesce(loaded_at, started_at) AS loaded_at FROM urlpoll_instances
                WHERE heartbeat_at > (SELECT now FROM t) - \(alive)::float8)
            SELECT s.script_hash, s.loaded_by, s.loaded_at, coalesce(i.host, s.loaded_by_host),
                coalesce(i.pid, s.loaded_by_pid),
                EXISTS (SELECT 1 FROM live WHERE live.script_hash = s.script_hash),
                (SELECT script_hash FROM live ORDER BY loaded_at DESC, id LIMIT 1)
            FROM (SELECT 1) AS one
            LEFT JOIN urlpoll_schedule s ON s.id = 1
            LEFT JOIN urlpoll_instances i ON i.id = s.loaded_by
            """, logger: Self.quiet)
        for try await (hash, by, at, host, pid, followed, newest) in rows.decode(
            (String?, String?, Double?, String?, Int32?, Bool?, String?).self)
        {
            let schedule = hash.map {
                Previous(scriptHash: $0, loadedBy: by ?? "", loadedAt: at, host: host, pid: pid.map(Int.init))
            }
            return Following(schedule: schedule, followed: followed ?? false, newest: newest)
        }
        return Following(schedule: nil, followed: false, newest: nil)
    }

    /// This instance stops cleanly: the statements its other sessions are still running are cancelled
    /// (`pg_cancel_backend` of its own backends, found by their `application_name`: a start's listing that
    /// waits for a lock, a claim); its row in `urlpoll_instances` is removed (its host and process id kept
    /// in `urlpoll_schedule` when it loaded the script the fleet follows, so ``Previous/loader`` still names
    /// them); and, with `releasing`, once every statement begun before has answered (a claim that answers
    /// after the stop began counts; waited for at most half of `limit`), the rows it still holds the lease of (claimed, not written back) are
    /// released (`lease_owner = NULL`), so other instances claim them at once instead of after the lease.
    /// Call it once polling has stopped. The rows are locked in `id` order, as every multi-row update of the
    /// schedule is, and a deadlock (SQLSTATE 40P01) is tried once more (``retryingConflicts(_:_:)``).
    ///
    /// First it ends this instance's other sessions (``endOtherSessions(on:)``): a heartbeat or beat this
    /// instance gave up (urlpoll stopping cancels it, and a cancelled statement is not waited for) may still
    /// be running on the server, held behind another session's lock, and would otherwise register the
    /// instance again after its row was removed, where it would show as live until it expired.
    ///
    /// On a connection of its own, not the pool's (whose requests wait for a connection while the server
    /// is away): a server that refuses the connection fails it at once, in those words, and one that does
    /// not answer (frozen, unreachable) after `limit` (2 s by default), so a stop is never held up long.
    /// (<https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL>)
    /// - Parameter releasing: Whether to release leases; false for a stop during the start, which claimed
    ///   none (and whose release would wait for a lock another session holds on `urlpoll_targets`).
    /// - Throws: ``HistoryError`` in words: the connection's failure, or "no answer within 2 s".
    public func leave(within limit: Duration = .seconds(2), releasing: Bool = true) async throws(HistoryError) {
        let begun = self.running.withLock { Array($0.tasks.values) }
        _ = try await self.attempt("remove this instance from the schedule", within: limit) {
            let connection = try await PostgresConnection.connect(
                configuration: self.configuration, id: 0, logger: Self.quiet)
            do {
                try await self.endOtherSessions(on: connection)
                try await connection.run(
                    """
                    SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                    WHERE application_name = \(self.instance) AND pid <> pg_backend_pid() AND state = 'active'
                    """, logger: Self.quiet)
                try await connection.run(
                    """
                    WITH gone AS (DELETE FROM urlpoll_instances WHERE id = \(self.instance) RETURNING host, pid)
                    UPDATE urlpoll_schedule SET loaded_by_host = gone.host, loaded_by_pid = gone.pid FROM gone
                    WHERE urlpoll_schedule.loaded_by = \(self.instance)
                    """, logger: Self.quiet)
                if releasing {
                    // At most half the limit: a statement on a connection the server dropped without a word
                    // may never answer, and the release goes on without it.
                    let race = Race<Void>()
                    _ = await withCheckedContinuation { continuation in
                        race.begin(continuation)
                        race.hold(
                            Task {
                                for statement in begun { await statement.value }
                                race.finish(.success(()))
                            },
                            Task {
                                try? await Task.sleep(for: limit / 2)
                                race.finish(.success(()))
                            })
                    }
                    try await connection.run(
                        """
                        WITH lk AS MATERIALIZED (
                            SELECT id FROM urlpoll_targets WHERE lease_owner = \(self.instance) ORDER BY id FOR UPDATE)
                        UPDATE urlpoll_targets SET lease_owner = NULL, lease_until = NULL
                        WHERE id IN (SELECT id FROM lk) AND lease_owner = \(self.instance)
                        """, logger: Self.quiet)
                }
            } catch {
                try? await connection.close()
                throw error
            }
            try? await connection.close()
        }
    }

    /// Ends every other session of this instance (its pool's connections and its report lock's session,
    /// found by their `application_name`, which is the instance's name) and waits until they are gone, so
    /// no statement this instance sent before can still write after this returns: a session ended in the
    /// middle of a statement rolls it back, and a backend leaves `pg_stat_activity` only after its
    /// transaction ended. `pg_terminate_backend` may end sessions of the same role
    /// (<https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL>); it is asked again
    /// every 10 ms until none is left (PostgreSQL 12 and 13 have no form that waits), within the caller's
    /// time limit.
    func endOtherSessions(on connection: PostgresConnection) async throws {
        while true {
            var left: Int64 = 0
            for try await count in try await connection.query(
                """
                WITH mine AS MATERIALIZED (
                    SELECT pid FROM pg_stat_activity
                    WHERE application_name = left(\(self.instance), 63) AND pid <> pg_backend_pid()
                        AND usename = current_user AND datname = current_database())
                SELECT count(*) FROM mine WHERE pg_terminate_backend(pid)
                """, logger: Self.quiet
            ).decode(Int64.self) {
                left = count
            }
            if left == 0 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Gives up the report lock on `connection` (``lead(on:)``), which this instance holds: while the
    /// schedule follows another instance's script, `report` is for an instance that runs it.
    ///
    /// `pg_advisory_unlock_all()`: the lock is re-entrant (one unlock per lock taken), and the report lock
    /// is the only session-level lock this connection takes, so all of it goes at once
    /// (<https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS>).
    public func yieldLead(on connection: PostgresConnection) async throws(HistoryError) {
        _ = try await self.attempt("give up the report lock") {
            try await connection.run("SELECT pg_advisory_unlock_all()", logger: Self.quiet)
        }
    }
}
