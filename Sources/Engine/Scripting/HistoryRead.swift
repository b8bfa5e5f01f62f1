/// HistoryRead is a `urlpoll.history` call that waits on a ``RemoteHistoryStore`` (`--store`): read off the
/// Lua state while the hook's coroutine is suspended, as a ``HookRequest`` is sent.
struct HistoryRead: Sendable {
    /// The store to read.
    var store: any RemoteHistoryStore
    /// The URL's key in the store, and the URL as the script named it (for messages).
    var key: HistoryKey
    var url: String
    /// The window, in seconds since the epoch, and whether it is counted from the minute rollups.
    var from: Double
    var to: Double
    var byMinute: Bool
    /// Whether an empty answer is checked against what the store ever recorded: `url` is not the script's.
    var checksUnknown: Bool

    /// Reads the summary: the hook's outcome, the summary or why not in words (`urlpoll.history: …`).
    func perform() async -> HookOutcome {
        do {
            let summary = try await self.store.readSummary(
                key: self.key, from: self.from, to: self.to, byMinute: self.byMinute)
            if self.checksUnknown, summary.isEmpty, !(try await self.store.readHolds(self.key)) {
                return .failure(LuaRuntime.unknownHistoryURL(self.key), cookies: nil, session: nil)
            }
            return .history(summary)
        } catch {
            return .failure("urlpoll.history: \(error.description)", cookies: nil, session: nil)
        }
    }
}
