import CLua
import FoundationEssentials
import Synchronization

/// HistoryLink holds the store `urlpoll.history` reads: given when the script is loaded, or connected just
/// after, once the store its `data` setting names is open. Set once per session; read by the one owner of
/// the Lua state.
public final class HistoryLink: Sendable {
    private let current = Mutex<(any HistoryStore)?>(nil)

    public init() {}

    /// The store, or nil before one is connected.
    public var store: (any HistoryStore)? { self.current.withLock { $0 } }

    /// From now on `urlpoll.history` reads `store`.
    public func connect(_ store: any HistoryStore) {
        self.current.withLock { $0 = store }
    }
}

// `urlpoll.history(url, seconds)`: what the `--data` store counted for one URL over the last `seconds`.
extension LuaRuntime {
    /// The longest window `urlpoll.history` takes: the hour rollups' retention, 400 days.
    static let longestHistoryWindow = 400.0 * 86_400

    /// Windows up to this long are counted from the minute rollups, longer ones from the hour rollups.
    static let minuteHistoryWindow = 86_400.0

    /// The longest `urlpoll.history` waits on a ``RemoteHistoryStore`` (`--store`) where Lua cannot suspend
    /// the caller (`backoff`, the load, a C function of Lua's library): the whole Lua state waits meanwhile.
    static let historyWaitLimit = Duration.seconds(1)

    /// `urlpoll.history`: the host function behind a Lua wrapper that raises what a suspended read answered
    /// (nil and the error) at the script's line, as the host function raises its own errors.
    static let historyPrelude = """
        local read = ...
        \(wherePrelude)
        function urlpoll.history(...)
          local summary, err = read(...)
          if summary == nil then error(where() .. err, 0) end
          return summary
        end
        """

    /// Adds `history` to the `urlpoll` table (after the prelude made it).
    func installHistory() throws(ScriptError) {
        up_pushhostfn(self.L) { L in LuaRuntime.host(L) { runtime throws(HostError) in try runtime.hostHistory() } }
        try self.run(source: Self.historyPrelude, name: "=urlpoll", nargs: 1)
    }

    /// `urlpoll.history(url, seconds)` → `{ polls, failures, degraded, uptime, latency_p95, latency_max,
    /// changes = { { at, from, to, from_status, to_status, detail }, … } }`, read from the store's reader
    /// connection (WAL: it never waits for the writer). Counts polls written up to the last tick. `url` is
    /// the URL as written (`s.raw_url`), its name, or as printed (`s.url`) when no other URL prints alike
    /// (``HistoryKeyIndex``); a URL the script does not list is read as printed when the store holds it (a URL
    /// the script listed before).
    ///
    /// With a ``RemoteHistoryStore`` (`--store`), a hook that may suspend (`check`, `on_result`,
    /// `on_change`, `report`, from its own code) yields while PostgreSQL answers, as `urlpoll.http` does,
    /// and is resumed with the table, or nil and the error the wrapper raises; elsewhere the read waits at
    /// most ``historyWaitLimit``.
    /// - Throws: (raised at the calling line) a `url` that is neither the script's nor held by the store
    ///   (`--data` or `--store`) (`urlpoll.history: no URL of the script is "…" and the history has none recorded`); an
    ///   ambiguous printed URL, a bad window, no store, or the store's read failing.
    private func hostHistory() throws(HostError) -> Int32 {
        guard let url = self.string(at: 1) else {
            throw HostError("bad argument #1 to 'history' (URL string expected, got \(self.describe(at: 1)))")
        }
        guard let seconds = self.number(at: 2), seconds.isFinite, seconds > 0, seconds <= Self.longestHistoryWindow
        else {
            throw HostError(
                "bad argument #2 to 'history' (a number of seconds above 0 and at most \(Int(Self.longestHistoryWindow)) expected, got \(self.describe(at: 2)))"
            )
        }
        guard let store = self.history.store else {
            throw HostError(
                "urlpoll.history needs the history store: run with --data DIR (urlpoll run SCRIPT --data /var/lib/urlpoll), or with --store postgresql://USER@HOST:PORT/DB to share one in PostgreSQL"
            )
        }
        let keys = self.historyKeys ?? HistoryKeyIndex(self.historyTargets ?? [])
        self.historyKeys = keys
        let listed: HistoryKey?
        do {
            listed = try keys.listedKey(for: url)
        } catch  where error.byName {
            throw HostError(
                "bad argument #1 to 'history' (\(error.count) URLs are named \(url): pass s.raw_url or s.url to say which)"
            )
        } catch {
            throw HostError(
                "bad argument #1 to 'history' (\(error.count) URLs print as \(url): they differ only by their password; pass s.raw_url or the URL's name)"
            )
        }
        // A URL the script does not list is looked up as printed (no password), as one it listed before.
        let key = listed ?? HistoryKey(url: RequestDescription.redacting(url))
        let now = Date().timeIntervalSince1970
        let byMinute = seconds <= Self.minuteHistoryWindow
        // A URL neither listed nor ever recorded is a typo more often than not: an empty answer would read as
        // "no polls". While the top level runs, the script's list is not read yet.
        let checksUnknown = listed == nil && self.historyTargets != nil
        let summary: HistorySummary
        if let remote = store as? any RemoteHistoryStore {
            if let call = self.active, call.thread == self.L, lua_isyieldable(self.L) != 0 {
                var buffer = [CChar](repeating: 0, count: 256)
                up_wherebuf(self.L, &buffer, buffer.count)
                let location = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                self.pendingRequest = HookRequest(
                    HistoryRead(
                        store: remote, key: key, url: url, from: now - seconds, to: now, byMinute: byMinute,
                        checksUnknown: checksUnknown),
                    location: location)
                return UP_YIELD_CODE
            }
            var held = true
            do {
                summary = try remote.summary(
                    key: key, from: now - seconds, to: now, byMinute: byMinute, within: Self.historyWaitLimit)
                if checksUnknown, summary.isEmpty { held = try remote.holds(key, within: Self.historyWaitLimit) }
            } catch {
                throw HostError(
                    "urlpoll.history: \(error.description); where Lua cannot suspend the caller (\(self.whereNoWaiting)) it waits at most \(formatSeconds(Self.historyWaitLimit.seconds)) s: call it from check, on_result, on_change or report to wait for the store"
                )
            }
            guard held else { throw HostError(Self.unknownHistoryURL(key)) }
        } else {
            var held = true
            do {
                summary = try store.summary(key: key, from: now - seconds, to: now, byMinute: byMinute)
                if checksUnknown, summary.isEmpty { held = try store.holds(key) }
            } catch {
                throw HostError("urlpoll.history: \(error.description)")
            }
            guard held else { throw HostError(Self.unknownHistoryURL(key)) }
        }
        self.push(summary)
        return 1
    }

    /// `urlpoll.history`'s error for a URL that is neither the script's nor ever recorded by the store.
    static func unknownHistoryURL(_ key: HistoryKey) -> String {
        "urlpoll.history: no URL of the script is \"\(key.url)\" and the history has none recorded (pass s.raw_url, s.url or a URL's name)"
    }

    /// Why the code calling `urlpoll.history` cannot be suspended, in a few words.
    private var whereNoWaiting: String {
        if let call = self.active {
            return call.thread == self.L
                ? "called by a C function of Lua's library" : "called from a coroutine the script started"
        }
        return "called from \(self.phase)"
    }

    /// Pushes `summary` as `urlpoll.history`'s table.
    func push(_ summary: HistorySummary) {
        let rollup = summary.rollup
        lua_createtable(self.L, 0, 7)
        self.setField("polls", integer: rollup.polls)
        self.setField("failures", integer: rollup.failures)
        self.setField("degraded", integer: rollup.degraded)
        if let uptime = rollup.uptime { self.setField("uptime", number: uptime) }
        if let p95 = rollup.sketch.quantile(0.95) { self.setField("latency_p95", number: p95) }
        if rollup.sketch.count > 0 { self.setField("latency_max", number: rollup.latencyMax) }
        lua_pushstring(self.L, "changes")
        lua_createtable(self.L, Int32(summary.changes.count), 0)
        for (i, change) in summary.changes.enumerated() {
            lua_createtable(self.L, 0, 6)
            self.setField("at", number: change.at)
            if let from = change.from { self.setField("from", string: from.rawValue) }
            self.setField("to", string: change.to.rawValue)
            if let status = change.fromStatus { self.setField("from_status", string: status) }
            self.setField("to_status", string: change.toStatus)
            if let detail = change.detail { self.setField("detail", string: detail) }
            lua_rawseti(self.L, -2, lua_Integer(i + 1))
        }
        lua_rawset(self.L, -3)
    }

    private func setField(_ name: String, integer: Int) {
        lua_pushstring(self.L, name)
        lua_pushinteger(self.L, lua_Integer(integer))
        lua_rawset(self.L, -3)
    }

    private func setField(_ name: String, number: Double) {
        lua_pushstring(self.L, name)
        lua_pushnumber(self.L, number)
        lua_rawset(self.L, -3)
    }

    private func setField(_ name: String, string: String) {
        lua_pushstring(self.L, name)
        self.push(string)
        lua_rawset(self.L, -3)
    }
}
