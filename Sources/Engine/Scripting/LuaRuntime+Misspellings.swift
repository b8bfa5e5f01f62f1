import CLua

// A global the script sets whose name is a near miss of one urlpoll reads (`pollerz = 8`, `stor = "…"`) is
// otherwise silently ignored: the script runs with the default, or, for `store`, alone instead of in a
// fleet. Warned about at load, with the line.
extension LuaRuntime {
    /// The settings urlpoll reads from the script's globals (values, not functions).
    static let settingNames = [
        "pollers", "poll_interval", "status_interval", "error_backoff", "timeout", "method", "listen", "metrics",
        "title", "data", "store", "urls", "modules",
    ]
    /// The hooks urlpoll calls (functions).
    static let hookNames = ["backoff", "report", "check", "on_change", "on_result"]
    /// Lua 5.4's own globals (§6) and urlpoll's table: never a misspelling.
    static let standardGlobals: Set<String> = [
        "_G", "_VERSION", "assert", "collectgarbage", "coroutine", "debug", "dofile", "error", "getmetatable", "io",
        "ipairs", "load", "loadfile", "math", "next", "os", "package", "pairs", "pcall", "print", "rawequal",
        "rawget", "rawlen", "rawset", "require", "select", "setmetatable", "string", "table", "tonumber",
        "tostring", "type", "utf8", "warn", "xpcall", "urlpoll",
    ]

    /// One warning per global the script set whose name is within two edits of a setting's (for a value) or
    /// a hook's (for a function) and is not that name: `script.lua:3: global 'pollerz' is not a setting
    /// urlpoll reads; did you mean 'pollers'?`. Globals of the script's own far from every name are fine.
    func misspelledGlobals(_ source: ScriptSource) -> [String] {
        let known = Set(Self.settingNames + Self.hookNames)
        var warnings: [String] = []
        up_pushglobaltable(self.L)
        defer { lua_settop(self.L, -2) }
        lua_pushnil(self.L)
        while lua_next(self.L, -2) != 0 {
            defer { lua_settop(self.L, -2) }
            guard lua_type(self.L, -2) == LUA_TSTRING, let name = self.string(at: -2), !known.contains(name),
                !Self.standardGlobals.contains(name)
            else { continue }
            let isFunction = lua_type(self.L, -1) == LUA_TFUNCTION
            let candidates = isFunction ? Self.hookNames : Self.settingNames
            guard let near = candidates.first(where: { editDistance($0, name) <= 2 }) else { continue }
            let what = isFunction ? "a hook urlpoll calls" : "a setting urlpoll reads"
            warnings.append(
                source.locate(assigning: name) + "global '\(name)' is not \(what); did you mean '\(near)'?")
        }
        return warnings.sorted()
    }
}
