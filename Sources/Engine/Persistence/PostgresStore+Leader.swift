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

    /// Ends the session of `leader` (`pg_terminate_backend`, allowed between sessions of the same role), whose
    /// heartbeat stopped while it kept its connection (a frozen or hung process), and takes the report lock
    /// on `connection`, waiting at most 2 s for the ended session to let it go
    /// (<https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL>).
    /// - Returns: Whether this instance holds the lock now.
    public func takeOver(from leader: Leader, on connection: PostgresConnection) async throws(HistoryError) -> Bool {
        try await self.attempt("take report over from \(leader.instance)") {
            try await connection.query(
                """
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE pid = \(leader.backend) AND application_name = \(leader.instance)
                """, logger: Self.quiet)
            try await connection.query("SELECT set_config('lock_timeout', '2s', false)", logger: Self.quiet)
            let held: Bool
            do {
                try await connection.query("SELECT pg_advisory_lock(\(Self.reportLock))", logger: Self.quiet)
                held = true
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55P03" {
                // lock_not_available: another instance took it first.
                held = false
            }
            try await connection.query("SELECT set_config('lock_timeout', '0', false)", logger: Self.quiet)
            return held
        }
    }
}
