/// EmptyHistoryStore is a store that holds nothing and keeps nothing: what `urlpoll check` gives a script,
/// so that `urlpoll.history` at the script's top level (which `run --data` accepts) reads an empty history
/// there (`polls = 0`, no `uptime`, no changes) instead of failing the check. Writes are dropped.
public struct EmptyHistoryStore: HistoryStore {
    public init() {}

    public var generation: Int { 0 }

    public func savedStates() throws(HistoryError) -> [State] { [] }

    public func write(_ batch: HistoryBatch) async throws(HistoryError) {}

    public func prune(before cutoff: (minutes: Double, hours: Double)) async throws(HistoryError) {}

    public func summary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool) throws(HistoryError)
        -> HistorySummary
    {
        HistorySummary(rollup: Rollup(start: Int64(start.rounded(.down))), changes: [])
    }

    public func hourly(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] { [:] }

    public func daily(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] { [:] }

    public func urlIDs() -> [HistoryKey: Int64] { [:] }

    public func hourly(id: Int64, since start: Double) throws(HistoryError) -> [Rollup] { [] }

    public func latestChanges(limit: Int) throws(HistoryError) -> [HistoryChange] { [] }
}
