import PostgresNIO

extension PostgresStore {
    /// What one read of the fleet's states found (``fleet(since:on:)``).
    public struct FleetRead: Sendable {
        /// The read's horizon: the oldest transaction (a 64-bit txid, `txid_snapshot_xmin`) that was still
        /// running when the read took its snapshot. Every row written by a transaction the read did not see
        /// carries this txid or a later one in its `xmin`; passed as `since` to the next read, that read
        /// returns them.
        public var horizon: Int64
        /// Whether every listed row was read (the map is replaced), or only the rows written since `since`
        /// (merged into it).
        public var full: Bool
        /// The rows read, by row id: the row's state, or nil for a row that no longer shows in the fleet
        /// (retired, or never polled), which leaves the map. A full read lists only rows that show.
        public var rows: [(id: Int64, state: State?)]
    }

    /// How far apart (in transactions) a read's `since` and the server's next txid may be for a delta read:
    /// 2^31, the distance at which a row's 32-bit `xmin` can no longer be placed before or after `since`.
    static var deltaSpan: Int64 { 1 << 31 }

    /// The fleet's states: with `since` nil, every listed row that was polled (a full read); with `since` a
    /// previous read's ``FleetRead/horizon``, only the rows written since that read (a delta read),
    /// retired ones included, so the caller can merge them into the map the reads before made. On
    /// `connection` when one is given, else on the pool's.
    ///
    /// Why `xmin` and not a written-at column: `xmin` is the transaction that wrote the row version, so a
    /// write-back that began before a read and committed after it (which a timestamp taken by the writer
    /// would date before the read, and a margin would have to guess the length of) carries a txid at or
    /// after the read's horizon, the oldest transaction the read's snapshot still saw running, and the next
    /// read returns it; nothing to migrate, and no clock involved. The cost is rows read twice (written by
    /// a transaction the read saw, after its horizon, or claimed without a new state), never a row missed.
    /// `xmin` is a 32-bit transaction id and the horizon a 64-bit txid: a row is taken when its `xmin` is
    /// at most `next - since` transactions after `since`, counted modulo 2^32, which holds for every row
    /// written since as long as fewer than 2^31 transactions passed (``deltaSpan``); past that, or with the
    /// server's txid behind `since` (another server, a restored database), the read is a full one. A row
    /// frozen long ago whose raw `xmin` happens to fall in the window is read again, which is harmless.
    /// `txid_current_snapshot()` and `txid_snapshot_xmin/xmax()` are PostgreSQL 12's names, kept by later
    /// versions (<https://www.postgresql.org/docs/15/functions-info.html#FUNCTIONS-PG-SNAPSHOT>,
    /// <https://www.postgresql.org/docs/15/ddl-system-columns.html>).
    ///
    /// Rows deleted outright (not retired) are not seen by a delta read: urlpoll never deletes a listed row,
    /// and the caller's periodic full read (``FleetView``) drops any all the same.
    /// - Throws: ``HistoryError`` in words.
    public func fleet(since: Int64?, on connection: PostgresConnection? = nil) async throws(HistoryError)
        -> FleetRead
    {
        try await self.attempt("read the fleet's states") {
            let query: PostgresQuery = """
                WITH c AS MATERIALIZED (SELECT txid_current_snapshot() AS snapshot),
                s AS MATERIALIZED (
                    SELECT txid_snapshot_xmin(c.snapshot) AS horizon, txid_snapshot_xmax(c.snapshot) AS next,
                        \(since)::bigint AS since FROM c),
                f AS MATERIALIZED (
                    SELECT horizon, since, next - since AS span,
                        since IS NULL OR next - since < 0 OR next - since >= \(Self.deltaSpan)::bigint AS full FROM s)
                SELECT f.horizon, f.full, t.id, t.retired, t.url, t.ordinal, t.name, t.status, t.state, t.since,
                    t.code, t.error, t.detail, t.error_count, t.latency, t.polls, t.checked_at
                FROM f LEFT JOIN urlpoll_targets t ON CASE WHEN f.full THEN NOT t.retired AND t.status IS NOT NULL
                    ELSE (t.xmin::text::bigint - f.since % 4294967296 + 4294967296) % 4294967296 < f.span END
                """
            let rows: PostgresRowSequence
            if let connection {
                rows = try await connection.query(query, logger: Self.quiet)
            } else {
                rows = try await self.client.query(query, logger: Self.quiet)
            }
            var read = FleetRead(horizon: 0, full: true, rows: [])
            for try await row in rows {
                let (horizon, full, id, retired, url, ordinal, name) = try row.decode(
                    (Int64, Bool, Int64?, Bool?, String?, Int?, String?).self)
                read.horizon = horizon
                read.full = full
                guard let id, let url, let ordinal, let name else { continue }
                let state =
                    retired == true
                    ? nil : try Self.state(from: row, url: url, ordinal: ordinal, name: name, offset: 7)
                read.rows.append((id, state))
            }
            return read
        }
    }
}
