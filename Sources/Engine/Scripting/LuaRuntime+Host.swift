import CLua
import FoundationEssentials
import Logging

/// The program's version string, `urlpoll.version` in scripts.
public let urlpollVersion = "0.1.0"

// The `urlpoll` table scripts call into. The parts that take variable arguments or convert values with
// metamethods are Lua (the prelude below); the parts that need the engine are Swift host functions that
// never raise themselves: they return -1 and the C trampoline raises.
extension LuaRuntime {
    static let prelude = """
        local host_log, host_now, args, version, post, exec, encode, decode, host_print = ...
        urlpoll = { args = args, version = version, now = host_now, post = post, exec = exec,
                    json = { encode = encode, decode = decode } }

        -- Finalizers (__gc) run with the instruction budget switched off, so one that never ends would stall
        -- the engine: refuse them where they are set.
        local rawsetmetatable = setmetatable
        function setmetatable(t, mt)
          if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
            error("__gc metamethods are not supported: finalizers run outside the instruction budget", 2)
          end
          return rawsetmetatable(t, mt)
        end

        -- print(...): as Lua's, but through urlpoll's standard output, which never blocks a hook on the reader.
        function print(...)
          local parts = table.pack(...)
          for i = 1, parts.n do parts[i] = tostring(parts[i]) end
          return host_print(table.concat(parts, "\\t", 1, parts.n) .. "\\n")
        end

        -- urlpoll.log(level, ...): log through the engine's logger.
        function urlpoll.log(level, ...)
          local parts = table.pack(...)
          for i = 1, parts.n do parts[i] = tostring(parts[i]) end
          return host_log(level, table.concat(parts, " ", 1, parts.n))
        end
        """

    func installHostAPI(args: [String]) throws(ScriptError) {
        up_pushhostfn(self.L) { L in
            guard let L else { return 0 }
            let runtime = LuaRuntime.owner(of: L)
            let levels: [String: Logger.Level] = [
                "debug": .debug, "info": .info, "warning": .warning, "error": .error,
            ]
            guard let name = runtime.string(at: 1), let level = levels[name] else {
                runtime.push(
                    "bad argument #1 to 'log' (expected \"debug\", \"info\", \"warning\" or \"error\", got "
                        + runtime.describe(at: 1) + ")")
                return -1
            }
            let message = runtime.string(at: 2) ?? ""
            runtime.logger.log(level: level, "\(message)", metadata: ["script": "\(runtime.path)"])
            return 0
        }
        up_pushhostfn(self.L) { L in
            guard let L else { return 0 }
            lua_pushnumber(L, Date().timeIntervalSince1970)
            return 1
        }
        lua_createtable(self.L, Int32(args.count), 0)
        for (i, arg) in args.enumerated() {
            self.push(arg)
            lua_rawseti(self.L, -2, lua_Integer(i + 1))
        }
        self.push(urlpollVersion)
        up_pushhostfn(self.L) { L in
            guard let L else { return 0 }
            return LuaRuntime.owner(of: L).hostPost()
        }
        up_pushhostfn(self.L) { L in
            guard let L else { return 0 }
            return LuaRuntime.owner(of: L).hostExec()
        }
        up_pushhostfn(self.L) { L in
            guard let L else { return 0 }
            let runtime = LuaRuntime.owner(of: L)
            switch runtime.encodeJSON(at: 1) {
            case .success(let text):
                runtime.push(text)
                return 1
            case .failure(let error):
                runtime.push("bad argument #1 to 'encode' (\(error.message))")
                return -1
            }
        }
        up_pushhostfn(self.L) { L in
            guard let L else { return 0 }
            let runtime = LuaRuntime.owner(of: L)
            guard let text = runtime.bytes(at: 1) else {
                runtime.push("bad argument #1 to 'decode' (string expected, got \(runtime.typeName(at: 1)))")
                return -1
            }
            if let error = runtime.pushDecodedJSON(text) {
                runtime.push("bad argument #1 to 'decode' (\(error.message))")
                return -1
            }
            return 1
        }
        up_pushhostfn(self.L) { L in
            guard let L else { return 0 }
            let runtime = LuaRuntime.owner(of: L)
            runtime.output(runtime.string(at: 1) ?? "")
            return 0
        }
        try self.run(source: Self.prelude, name: "=urlpoll", nargs: 9)
    }

    /// `urlpoll.post(url, body [, headers])`: records a webhook for the dispatcher and returns at once.
    /// A table body is sent as JSON with `Content-Type: application/json`. (Called as a C function: Lua
    /// guarantees LUA_MINSTACK free slots, more than this uses.)
    private func hostPost() -> Int32 {
        guard let url = self.string(at: 1) else {
            self.push("bad argument #1 to 'post' (URL string expected, got \(self.describe(at: 1)))")
            return -1
        }
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
            scheme == "http" || scheme == "https", parsed.host() != nil
        else {
            self.push("bad argument #1 to 'post' (an http or https URL expected, got \"\(url)\")")
            return -1
        }
        var headers: [Header] = []
        var body: [UInt8]
        switch lua_type(self.L, 2) {
        case LUA_TNONE, LUA_TNIL:
            body = []
        case LUA_TSTRING:
            body = self.bytes(at: 2) ?? []
        case LUA_TTABLE:
            switch self.encodeJSON(at: 2) {
            case .success(let text): body = Array(text.utf8)
            case .failure(let error):
                self.push("bad argument #2 to 'post' (\(error.message))")
                return -1
            }
            headers.append(Header("Content-Type", "application/json"))
        default:
            self.push("bad argument #2 to 'post' (string or table expected, got \(self.typeName(at: 2)))")
            return -1
        }
        switch lua_type(self.L, 3) {
        case LUA_TNONE, LUA_TNIL:
            break
        case LUA_TTABLE:
            lua_pushnil(self.L)
            while lua_next(self.L, 3) != 0 {
                defer { lua_settop(self.L, -2) }
                guard let name = self.string(at: -2), let value = self.string(at: -1) else {
                    lua_settop(self.L, 3)
                    self.push("bad argument #3 to 'post' (a table of header names to strings expected)")
                    return -1
                }
                headers.removeAll { $0.name.lowercased() == name.lowercased() }
                headers.append(Header(name, value))
            }
        default:
            self.push("bad argument #3 to 'post' (table expected, got \(self.typeName(at: 3)))")
            return -1
        }
        self.alerts.append(.post(url: url, body: body, headers: headers))
        return 0
    }

    /// `urlpoll.exec(argv)`: records a command for the dispatcher and returns at once.
    private func hostExec() -> Int32 {
        var argv: [String] = []
        if lua_type(self.L, 1) == LUA_TTABLE {
            let count = Int(lua_rawlen(self.L, 1))
            for i in 0..<count {
                lua_rawgeti(self.L, 1, lua_Integer(i + 1))
                defer { lua_settop(self.L, -2) }
                guard let arg = self.string(at: -1) ?? self.number(at: -1).map(formatSeconds) else {
                    argv = []
                    break
                }
                argv.append(arg)
            }
        }
        guard let first = argv.first, !first.isEmpty else {
            self.push("bad argument #1 to 'exec' (a table of strings expected, such as { \"notify-send\", \"down\" })")
            return -1
        }
        self.alerts.append(.exec(argv: argv))
        return 0
    }

    /// The runtime that owns the state a host function was called on.
    static func owner(of L: OpaquePointer) -> LuaRuntime {
        Unmanaged<LuaRuntime>.fromOpaque(up_ctxof(L).pointee.owner).takeUnretainedValue()
    }
}
