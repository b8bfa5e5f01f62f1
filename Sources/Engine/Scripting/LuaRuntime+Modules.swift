import CLua
import FoundationEssentials

// The Lua modules compiled into urlpoll (`require "urlpoll.alerting"`, `require "urlpoll.alerts.slack"`,
// ...), the searcher that finds them, the script's own folder on `package.path`, and `urlpoll.exec`'s
// optional standard input (which the email provider needs for sendmail).
extension LuaRuntime {
    /// The embedded modules by `require` name; their sources live in `Scripting/Modules/`.
    static let embeddedModules: [String: [UInt8]] = [
        "urlpoll.alerting": PackageResources.alerting_lua,
        "urlpoll.alerts.event": PackageResources.event_lua,
        "urlpoll.alerts.slack": PackageResources.slack_lua,
        "urlpoll.alerts.discord": PackageResources.discord_lua,
        "urlpoll.alerts.teams": PackageResources.teams_lua,
        "urlpoll.alerts.pagerduty": PackageResources.pagerduty_lua,
        "urlpoll.alerts.opsgenie": PackageResources.opsgenie_lua,
        "urlpoll.alerts.telegram": PackageResources.telegram_lua,
        "urlpoll.alerts.ntfy": PackageResources.ntfy_lua,
        "urlpoll.alerts.gotify": PackageResources.gotify_lua,
        "urlpoll.alerts.webhook": PackageResources.webhook_lua,
        "urlpoll.alerts.email": PackageResources.email_lua,
    ]

    /// Runs after the host API's prelude: the embedded modules go into `package.searchers` right after
    /// Lua's own file searcher, so a file of the same name on `package.path` (such as
    /// `urlpoll/alerts/slack.lua` beside the script) overrides the embedded copy; and `urlpoll.exec`
    /// takes an optional `{ stdin = text }`. The chunk is named "=urlpoll" like the prelude, so errors
    /// raised through these wrappers point at the script's line.
    static let modulesPrelude = """
        local host_module, exec_input = ...
        table.insert(package.searchers, 3, function(name)
          local source = host_module(name)
          if source == nil then return "no module '" .. name .. "' built into urlpoll" end
          local chunk, err = load(source, "@" .. name:gsub("%.", "/") .. ".lua", "t")
          if chunk == nil then error(err, 0) end
          return chunk, "urlpoll:" .. name
        end)
        local exec = urlpoll.exec
        function urlpoll.exec(argv, opts)
          if opts == nil then return exec(argv) end
          return exec_input(argv, opts)
        end
        """

    /// Installs the module searcher and `urlpoll.exec`'s stdin.
    func installModules() throws(ScriptError) {
        up_pushhostfn(self.L) { L in
            guard let L else { return 0 }
            let runtime = LuaRuntime.owner(of: L)
            guard let name = runtime.string(at: 1), let source = LuaRuntime.embeddedModules[name] else {
                lua_pushnil(L)
                return 1
            }
            runtime.push(bytes: source)
            return 1
        }
        up_pushhostfn(self.L) { L in
            LuaRuntime.host(L) { runtime throws(HostError) in try runtime.hostExecWithInput() }
        }
        try self.run(source: Self.modulesPrelude, name: "=urlpoll", nargs: 2)
    }

    /// Puts the folder of the script at `path` first on `package.path` (`DIR/?.lua;DIR/?/init.lua`), so
    /// `require "mylib"` finds `mylib.lua` beside the script wherever urlpoll is started from.
    func addScriptDirectoryToPackagePath(_ path: String) throws(ScriptError) {
        guard let slash = path.lastIndex(of: "/") else { return }  // "./?.lua" already covers the working folder
        let directory = slash == path.startIndex ? "/" : String(path[..<slash])
        self.push(directory)
        try self.run(
            source: "local d = ...\npackage.path = d .. \"/?.lua;\" .. d .. \"/?/init.lua;\" .. package.path",
            name: "=urlpoll", nargs: 1)
    }

    /// `urlpoll.exec(argv, { stdin = text })`: records a command that gets `text` on its standard input.
    private func hostExecWithInput() throws(HostError) -> Int32 {
        let argv = try self.execArguments()
        guard lua_type(self.L, 2) == LUA_TTABLE else {
            throw HostError(
                "bad argument #2 to 'exec' (a table such as { stdin = \"text\" } expected, got \(self.typeName(at: 2)))"
            )
        }
        self.push("stdin")
        lua_rawget(self.L, 2)
        defer { lua_settop(self.L, -2) }
        let input: [UInt8]
        switch lua_type(self.L, -1) {
        case LUA_TNIL: input = []
        case LUA_TSTRING: input = self.bytes(at: -1) ?? []
        default:
            throw HostError("bad argument #2 to 'exec' (field 'stdin' must be a string, got \(self.typeName(at: -1)))")
        }
        self.alerts.append(.exec(argv: argv, input: input))
        return 0
    }
}
