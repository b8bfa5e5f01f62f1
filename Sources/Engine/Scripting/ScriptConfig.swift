/// ScriptConfig is what a loaded script declares: its settings, its URLs and which hooks it defines.
public struct ScriptConfig: Sendable {
    /// The script's path, as given.
    public var path: String
    public var settings: Settings
    /// The URLs in the order the script listed them.
    public var targets: [Target]
    /// The global `backoff` hook, if defined.
    public var backoff: HookRef?
    /// The global `report` hook, if defined.
    public var report: HookRef?
    /// The global `check` hook, if defined.
    public var check: HookRef?
    /// The `on_change` hook, if defined.
    public var onChange: HookRef?
    /// The `on_result` hook, if defined.
    public var onResult: HookRef?
    /// The `modules` table, by name: what `/probe?module=NAME` may poll with. Empty when the script
    /// defines none, and then `/probe` answers 404.
    public var modules: [String: ProbeModule] = [:]
    /// Globals the script set whose names are near misses of a setting or hook urlpoll reads, in words with
    /// their `file:line` (``LuaRuntime/misspelledGlobals(_:)``); logged at load, listed by `check`.
    public var warnings: [String] = []

    /// Whether any backoff policy (global or per URL) is written in Lua.
    public var hasBackoffHook: Bool {
        self.backoff != nil || self.targets.contains { $0.backoff != nil }
    }
}

/// LuaLimits bound what one call into the script may use, so a runaway hook is stopped and reported
/// instead of stalling or exhausting the engine.
public struct LuaLimits: Sendable, Hashable {
    /// The most memory the Lua state may hold (`memory_limit`, default 64 MiB).
    public var memory: Int = 64 << 20
    /// Lua VM instructions one hook call may run (default 10 million, about 50 ms).
    public var hookInstructions: Int64 = 10_000_000
    /// Lua VM instructions loading the script may run, `urls` function included (default 200 million,
    /// about a second).
    public var loadInstructions: Int64 = 200_000_000
    /// Requests one hook call may make with `urlpoll.http` (default 10); one more is an error at the
    /// calling line.
    public var httpRequests: Int = 10
    /// A hook call that makes requests is abandoned after this many times its URL's timeout (default 3),
    /// counted from its first request: a `check` is then judged down.
    public var hookDeadlineTimeouts: Double = 3

    public init() {}
}
