/// RemoteHistoryStore is a ``HistoryStore`` whose reads wait on a server (PostgreSQL's, `--store`:
/// ``PostgresHistory``), which may hang: `urlpoll.history` reads it with the async
/// ``readSummary(key:from:to:byMinute:)`` from a hook that may suspend (its coroutine waits, the Lua state runs
/// other hooks), and with ``summary(key:from:to:byMinute:within:)``'s short limit where Lua cannot suspend
/// (`backoff`, the script's load, a C function of Lua's library).
public protocol RemoteHistoryStore: HistoryStore {
    /// ``HistoryStore/summary(key:from:to:byMinute:)`` with the calling task suspended, never a thread
    /// blocked, until the answer, the store's own time limit or the task's cancellation.
    /// - Throws: ``HistoryError`` in words (what could not be read, and why: no answer within N s, …).
    func readSummary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool) async throws(HistoryError)
        -> HistorySummary

    /// ``HistoryStore/summary(key:from:to:byMinute:)`` on the calling thread, given up after `limit`.
    /// - Throws: ``HistoryError`` in words, naming the limit when it passed.
    func summary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool, within limit: Duration)
        throws(HistoryError) -> HistorySummary

    /// Whether the store has ever recorded the URL (a row for it, retired or not), the calling task
    /// suspended as in ``readSummary(key:from:to:byMinute:)``: `urlpoll.history`'s check for a URL that
    /// is not the script's.
    /// - Throws: ``HistoryError`` in words.
    func readHolds(_ key: HistoryKey) async throws(HistoryError) -> Bool

    /// ``readHolds(_:)`` on the calling thread, given up after `limit`.
    /// - Throws: ``HistoryError`` in words, naming the limit when it passed.
    func holds(_ key: HistoryKey, within limit: Duration) throws(HistoryError) -> Bool
}
