import Logging
import PostgresNIO

extension PostgresConnection {
    /// Runs `query` for its effect and reads its result to the end, so that an error PostgreSQL meets while
    /// running it is thrown here.
    ///
    /// postgres-nio's `query` returns once PostgreSQL has described a statement's rows (for a `SELECT`: before
    /// it runs), and hands the rows, and an error met while running it (a lock given up at `lock_timeout`,
    /// a refused function call), to the row sequence it returns: a statement whose rows are never read loses
    /// its error, and the next statement in its transaction fails with "current transaction is aborted"
    /// instead (<https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY>).
    ///
    /// - Throws: What postgres-nio throws (a `PSQLError`); callers run it within ``PostgresStore``'s
    ///   `attempt`, which says it in words.
    func run(_ query: PostgresQuery, logger: Logger = PostgresStore.quiet) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }
}
