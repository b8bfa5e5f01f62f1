import Logging
import PostgresNIO

extension PostgresStore {
    /// The schema version this urlpoll writes. A database at a higher version was written by a newer urlpoll
    /// and is refused, never changed.
    public static let schemaVersion = 4

    /// The advisory lock key (`pg_advisory_xact_lock`) under which the schema is migrated and the URL list
    /// synced, so instances starting together take turns.
    static let migrationLock: Int64 = 0x7572_6c70_6f6c_6c01

    /// The advisory lock key (`pg_try_advisory_lock`) the instance that runs `report` holds.
    static let reportLock: Int64 = 0x7572_6c70_6f6c_6c02

    /// The advisory lock key (`pg_try_advisory_lock`) a prune holds for its whole run, so one instance
    /// prunes at a time and two runs' batches never interleave.
    static let pruneLock: Int64 = 0x7572_6c70_6f6c_6c03

    /// Each version's statements, from version 1 on: `migrations[n - 1]` brings a database from n − 1 to n.
    ///
    /// Tables (all times are seconds since the epoch, as `double precision`):
    /// - `urlpoll_schema`: one row, the version.
    /// - `urlpoll_schedule`: one row: the hash of the script that last loaded its URL list (SHA-256 of the
    ///   script's text), the instance that loaded it, and when.
    /// - `urlpoll_targets`: one row per URL, keyed by its ``HistoryKey`` (`url` as printed, no password, and
    ///   `ordinal`): its definition hash, whether it is `retired` (no longer listed), `due_at`, the lease
    ///   (`lease_owner`, `lease_until`, `lease_seconds`, and `claims`, counted on every claim), the state a
    ///   poll left (`status`, `state`, `since`, `code`, `error`, `detail`, `error_count`, `latency`, `polls`,
    ///   `checked_at`), `version` (one more on every write) and `written_claim` (the claim the last write
    ///   came from, so a write retried after a lost reply is recognised).
    /// - `urlpoll_changes`: every change, keyed by the URL's row and the version it made.
    /// - `urlpoll_rollups`: per URL per minute: polls, failures (down), degraded, latency sum and maximum.
    /// - `urlpoll_instances`: one row per instance: host, process id, script hash, started, last heartbeat,
    ///   and (from version 2) `loaded_at`, when it last listed its script's URLs (its start, a reload, or a
    ///   takeover of an orphaned schedule: ``SharedSchedule``'s rule of which script the fleet follows).
    /// - `urlpoll_rollups_hour` (from version 3): per URL per hour, as `urlpoll_rollups`: the minutes a prune
    ///   took out of `urlpoll_rollups` (older than the minute retention), summed by hour; and indexes by time
    ///   on the rollups and changes, so a prune deletes its batches from the oldest end.
    /// - From version 4, `urlpoll_rollups` and `urlpoll_rollups_hour` keep a ``LatencySketch`` of the
    ///   latencies of the polls that were not down, as the `--data` file's rollups do: `sketch bigint[]`,
    ///   ``LatencySketch/packed`` (each element a bucket and its count, `bucket × 2^32 + count`), merged by
    ///   concatenation in the write-back's upsert and summed by bucket where it is read or compacted. Rows
    ///   written before version 4 have an empty sketch (their mean and maximum are kept). And
    ///   `urlpoll_schedule` keeps the host and process id of the instance that loaded the script
    ///   (`loaded_by_host`, `loaded_by_pid`) once that instance stopped cleanly and its row went, so messages
    ///   still name them.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE urlpoll_schema (version integer NOT NULL)
            """,
            """
            INSERT INTO urlpoll_schema (version) VALUES (1)
            """,
            """
            CREATE TABLE urlpoll_schedule (
            id integer PRIMARY KEY CHECK (id = 1), script_hash text NOT NULL, loaded_by text NOT NULL,
            loaded_at double precision NOT NULL)
            """,
            """
            CREATE TABLE urlpoll_targets (
            id bigserial PRIMARY KEY, url text NOT NULL, ordinal integer NOT NULL, name text NOT NULL,
            definition_hash text NOT NULL, retired boolean NOT NULL DEFAULT false,
            due_at double precision NOT NULL, lease_seconds double precision NOT NULL,
            lease_owner text, lease_until double precision, claims bigint NOT NULL DEFAULT 0,
            written_claim bigint, version bigint NOT NULL DEFAULT 0,
            status text, state text, since double precision, code integer, error text, detail text,
            error_count integer NOT NULL DEFAULT 0, latency double precision, polls bigint NOT NULL DEFAULT 0,
            checked_at double precision,
            UNIQUE (url, ordinal))
            """,
            """
            CREATE INDEX urlpoll_targets_due ON urlpoll_targets (due_at) WHERE NOT retired
            """,
            """
            CREATE TABLE urlpoll_changes (
            target_id bigint NOT NULL REFERENCES urlpoll_targets (id) ON DELETE CASCADE,
            version bigint NOT NULL, at double precision NOT NULL, from_state text, from_status text,
            to_state text NOT NULL, to_status text NOT NULL, detail text, instance text NOT NULL,
            PRIMARY KEY (target_id, version))
            """,
            """
            CREATE TABLE urlpoll_rollups (
            target_id bigint NOT NULL REFERENCES urlpoll_targets (id) ON DELETE CASCADE,
            start bigint NOT NULL, polls integer NOT NULL, failures integer NOT NULL, degraded integer NOT NULL,
            latency_sum double precision NOT NULL, latency_max double precision NOT NULL,
            PRIMARY KEY (target_id, start))
            """,
            """
            CREATE TABLE urlpoll_instances (
            id text PRIMARY KEY, host text NOT NULL, pid integer NOT NULL, script_hash text NOT NULL,
            started_at double precision NOT NULL, heartbeat_at double precision NOT NULL)
            """,
        ],
        [
            """
            ALTER TABLE urlpoll_instances ADD COLUMN loaded_at double precision
            """
        ],
        [
            """
            CREATE TABLE urlpoll_rollups_hour (
            target_id bigint NOT NULL REFERENCES urlpoll_targets (id) ON DELETE CASCADE,
            start bigint NOT NULL, polls integer NOT NULL, failures integer NOT NULL, degraded integer NOT NULL,
            latency_sum double precision NOT NULL, latency_max double precision NOT NULL,
            PRIMARY KEY (target_id, start))
            """,
            """
            CREATE INDEX urlpoll_rollups_start ON urlpoll_rollups (start)
            """,
            """
            CREATE INDEX urlpoll_rollups_hour_start ON urlpoll_rollups_hour (start)
            """,
            """
            CREATE INDEX urlpoll_changes_at ON urlpoll_changes (at)
            """,
        ],
        [
            // A constant default: PostgreSQL 11 and later add the column without rewriting the table.
            """
            ALTER TABLE urlpoll_rollups ADD COLUMN sketch bigint[] NOT NULL DEFAULT '{}'
            """,
            """
            ALTER TABLE urlpoll_rollups_hour ADD COLUMN sketch bigint[] NOT NULL DEFAULT '{}'
            """,
            """
            ALTER TABLE urlpoll_schedule ADD COLUMN loaded_by_host text, ADD COLUMN loaded_by_pid integer
            """,
        ],
    ]

    /// Creates the tables, or brings them to ``schemaVersion``, under the migration lock.
    /// - Throws: ``HistoryError`` in words when the database was written by a newer urlpoll, or cannot be
    ///   reached or changed.
    public func migrate() async throws(HistoryError) {
        try await self.attempt("prepare the schema") {
            try await self.client.withTransaction(logger: Self.quiet) { connection in
                try await connection.run("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: Self.quiet)
                let exists =
                    try await connection.query(
                        "SELECT to_regclass('urlpoll_schema') IS NOT NULL", logger: Self.quiet
                    ).decode(Bool.self).first { _ in true } ?? false
                var version = 0
                if exists {
                    for try await found in try await connection.query(
                        "SELECT max(version) FROM urlpoll_schema", logger: Self.quiet
                    ).decode(Int?.self) {
                        version = found ?? 0
                    }
                }
                guard version <= Self.schemaVersion else {
                    throw HistoryError(
                        "\(self.location) holds urlpoll's schema version \(version), written by a newer urlpoll (this one knows up to \(Self.schemaVersion)); upgrade urlpoll, or give it another database"
                    )
                }
                for step in version..<Self.schemaVersion {
                    for statement in Self.migrations[step] {
                        try await connection.run(PostgresQuery(unsafeSQL: statement), logger: Self.quiet)
                    }
                }
                if version < Self.schemaVersion {
                    try await connection.run(
                        "UPDATE urlpoll_schema SET version = \(Self.schemaVersion)", logger: Self.quiet)
                }
            }
        }
    }
}
