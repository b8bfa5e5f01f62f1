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
