import Synchronization

/// UnopenedHistoryStore stands for the `--data` store when its file could not be opened because the disk
/// under it is full (SQLite cannot make its `-wal` and `-shm` files there): urlpoll starts anyway, resuming
/// the states read from the file without writing (``SQLiteHistoryStore/savedStates(readingOnly:)``), and
/// every write fails in words, so the writer counts and says the loss as when the disk fills while urlpoll
/// runs. Each write first tries to open the file again: once there is space, the store opened takes over
/// and history is written again.
///
/// Until then readers see an empty history (`urlpoll.history` counts no polls; `/status` no uptime).
public final class UnopenedHistoryStore: HistoryStore {
    /// The data folder.
    public let directory: String
    /// The states read from the file when it could not be opened.
    private let saved: [State]
    private let opened = Mutex<SQLiteHistoryStore?>(nil)

    public init(directory: String, saved: [State]) {
        self.directory = directory
        self.saved = saved
    }

    private var store: SQLiteHistoryStore? { self.opened.withLock { $0 } }

    public var generation: Int { self.store?.generation ?? 0 }

    public func savedStates() throws(HistoryError) -> [State] {
        try self.store?.savedStates() ?? self.saved
    }

    /// Writes through the store once it opens; until then fails, saying why it cannot be opened.
    public func write(_ batch: HistoryBatch) async throws(HistoryError) {
        let store: SQLiteHistoryStore
        if let opened = self.store {
            store = opened
        } else {
            store = try SQLiteHistoryStore(directory: self.directory)
            self.opened.withLock { $0 = store }
        }
        try await store.write(batch)
    }

    public func prune(before cutoff: (minutes: Double, hours: Double)) async throws(HistoryError) {
        try await self.store?.prune(before: cutoff)
    }

    public func summary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool) throws(HistoryError)
        -> HistorySummary
    {
        guard let store = self.store else {
            return HistorySummary(rollup: Rollup(start: Int64(start.rounded(.down))), changes: [])
        }
        return try store.summary(key: key, from: start, to: end, byMinute: byMinute)
    }

    public func hourly(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] {
        try self.store?.hourly(since: start) ?? [:]
    }

    public func daily(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] {
        try self.store?.daily(since: start) ?? [:]
    }

    public func urlIDs() -> [HistoryKey: Int64] { self.store?.urlIDs() ?? [:] }

    public func hourly(id: Int64, since start: Double) throws(HistoryError) -> [Rollup] {
        try self.store?.hourly(id: id, since: start) ?? []
    }

    public func latestChanges(limit: Int) throws(HistoryError) -> [HistoryChange] {
        try self.store?.latestChanges(limit: limit) ?? []
    }

    public func gone() -> String? { self.store?.gone() }

    public func persistedHash(of key: HistoryKey) -> Int? { self.store?.persistedHash(of: key) }
}
