import PostgresNIO

extension PostgresStore {
    /// Runs `body` (one statement, or one transaction) and, when PostgreSQL ends it as one side of a deadlock
    /// (SQLSTATE 40P01, `deadlock_detected`), runs it once more, saying so in words with `what` it does.
    ///
    /// A statement ended so is rolled back whole, so running it again is safe. Every multi-row update of the
    /// schedule takes its rows in one order (by `id`: `ORDER BY id FOR UPDATE`), so two of urlpoll's own
    /// statements should never deadlock; another session's (an operator's `psql`, say) still may, and one
    /// more try then usually goes through (<https://www.postgresql.org/docs/15/explicit-locking.html#LOCKING-DEADLOCKS>,
    /// <https://www.postgresql.org/docs/15/errcodes-appendix.html>).
    /// - Throws: What the second try throws, or the first's error when it is no deadlock.
    @discardableResult
    func onceMoreAfterDeadlock<T: Sendable>(_ what: String, _ body: @Sendable () async throws -> T) async throws
        -> T
    {
        do {
            return try await body()
        } catch  where Self.isDeadlock(error) {
            self.logger.warning(
                "\(self.location): PostgreSQL ended the statement to \(what) as one side of a deadlock with another session (SQLSTATE 40P01); it was rolled back and is tried once more"
            )
            return try await body()
        }
    }

    /// Whether `error` is PostgreSQL's `deadlock_detected` (SQLSTATE 40P01), inside postgres-nio's wrappers.
    static func isDeadlock(_ error: any Error) -> Bool {
        (Self.unwrapped(error) as? PSQLError)?.serverInfo?[.sqlState] == "40P01"
    }
}
