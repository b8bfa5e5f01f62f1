import FoundationEssentials
import Logging
import PostgresNIO

extension PostgresStore {
    /// The instance that holds the report lock, as the server sees it.
    public struct Leader: Sendable, Hashable {
        /// The process id of its session's backend (`pg_backend_pid()` on its connection).
        public var backend: Int32
        /// Its name (its session's `application_name`, ``PostgresStore/instance``).
        public var instance: String
        /// Its last heartbeat (seconds since the epoch, by the database's clock or the `now` the instance
        /// gave), nil when no instance of that name has a row in `urlpoll_instances` (not an urlpoll of this
        /// version, which names its sessions).
        public var heartbeat: Double?
    }

    /// Who holds the report lock now (`pg_locks` joined with `pg_stat_activity` on the backend, and with
    /// `urlpoll_instances` on the session's `application_name`); nil when nobody does. On `connection`.
    public func reportLeader(on connection: PostgresConnection) async throws(HistoryError) -> Leader? {
        let high = Int64(UInt64(bitPattern: Self.reportLock) >> 32)
        let low = Self.reportLock & 0xFFFF_FFFF
        return try await self.attempt("look up who runs report") {
            let rows = try await connection.query(
                """
                SELECT l.pid, a.application_name, i.heartbeat_at
                FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                LEFT JOIN urlpoll_instances i ON left(i.id, 63) = a.application_name
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND l.classid::bigint = \(high) AND l.objid::bigint = \(low)
                    AND l.pid <> pg_backend_pid()
                ORDER BY i.heartbeat_at DESC NULLS LAST LIMIT 1
                """, logger: Self.quiet)
            for try await (pid, name, heartbeat) in rows.decode((Int32, String, Double?).self) {
                return Leader(backend: pid, instance: name, heartbeat: heartbeat)
            }
            return nil
        }
    }

    /// What ``takeOver(from:on:)`` came to.
    public enum TakeOver: Sendable, Hashable {
        /// This instance holds the report lock now.
        case taken
        /// The leader's session was ended, but another instance took the lock first.
        case lost
        /// PostgreSQL did not let this instance end the leader's session (SQLSTATE 42501: it runs under
        /// another role, and this one is neither a superuser nor a member of `pg_signal_backend`); the words
        /// say so and what to do. The leader keeps the lock.
        case refused(String)
    }

    /// Ends the session of `leader` (`pg_terminate_backend`, which PostgreSQL allows on the sessions of the
    /// same role, or of any role to a superuser or a member of `pg_signal_backend`), whose heartbeat stopped
    /// while it kept its connection (a frozen or hung process), and takes the report lock on `connection`,
    /// waiting at most 2 s for the ended session to let it go
    /// (<https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL>).
    /// - Returns: Whether this instance holds the lock now, or why it could not end the leader's session.
    public func takeOver(from leader: Leader, on connection: PostgresConnection) async throws(HistoryError)
        -> TakeOver
    {
        try await self.attempt("take report over from \(leader.instance)") {
            // A statement's error comes with its rows, after `query` returned: each is read to its end (`run`).
            do {
                try await connection.run(
                    """
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE pid = \(leader.backend) AND application_name = \(leader.instance)
                    """)
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42501" {
                // insufficient_privilege: the leader's session is another role's.
                let rows = try await connection.query(
                    """
                    SELECT coalesce((SELECT usename::text FROM pg_stat_activity WHERE pid = \(leader.backend)), 'another'),
                        current_user::text
                    """, logger: Self.quiet)
                var roles = ("another", self.location.user)
                for try await found in rows.decode((String, String).self) { roles = found }
                return .refused(
                    "cannot end the session of \(leader.instance), which holds the report lock: its role \(roles.0) is not this instance's (\(roles.1)), and PostgreSQL lets a role end only its own sessions; run every instance as one role, or GRANT pg_signal_backend TO \(roles.1)"
                )
            }
            try await connection.run(
                "SELECT set_config('lock_timeout', '2s', false)")
            let held: Bool
            do {
                try await connection.run(
                    "SELECT pg_advisory_lock(\(Self.reportLock))")
                held = true
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55P03" {
                // lock_not_available: another instance took it first.
                held = false
            }
            try await connection.run(
                "SELECT set_config('lock_timeout', '0', false)")
            return held ? .taken : .lost
        }
    }
}
