import CLua
import FoundationEssentials
import Logging

/// The program's version string, `urlpoll.version` in scripts.
public let urlpollVersion = "0.1.0"

// The `urlpoll` table scripts call into. The parts that take variable arguments or convert values with
// metamethods are Lua (the prelude below); the parts that need the engine are Swift host functions that
// never raise themselves: they throw a HostError, ``LuaRuntime/host(_:_:)`` pushes its message and returns
// -1, and the C trampoline raises it with the calling script line.
extension LuaRuntime {
    static let prelude = """
        local host_log, host_now, args, version, post, exec, encode, decode,
              set_metatable, debug_set_metatable, debug_get_metatable, no_registry, host_print = ...
        urlpoll = { args = args, version = version, now = host_now, post = post, exec = exec,
                    json = { encode = encode, decode = decode } }

        -- Lua runs finalizers (__gc) with every hook switched off, so the instruction budget cannot stop one
        -- that never ends. So no script code may become a finalizer: both ways to set a metatable refuse one
        -- with __gc (Swift functions, so no upvalue hands a script the raw ones back); the one metatable the
        -- standard library gives a finalizer, the file handles', is hidden from getmetatable and
        -- debug.getmetatable; and debug.getregistry, which reaches it too, is withdrawn.
        rawset(getmetatable(io.stdout), "__metatable", "file")
        setmetatable = set_metatable
        debug.setmetatable = debug_set_metatable
        debug.getmetatable = debug_get_metatable
        debug.getregistry = no_registry

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
        up_pushhostfn(self.L) { L in LuaRuntime.host(L) { runtime throws(HostError) in try runtime.hostLog() } }
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
        up_pushhostfn(self.L) { L in LuaRuntime.host(L) { runtime throws(HostError) in try runtime.hostPost() } }
        up_pushhostfn(self.L) { L in LuaRuntime.host(L) { runtime throws(HostError) in try runtime.hostExec() } }
        up_pushhostfn(self.L) { L in
            LuaRuntime.host(L) { runtime throws(HostError) in try runtime.hostEncode() }
        }
        up_pushhostfn(self.L) { L in
            LuaRuntime.host(L) { runtime throws(HostError) in try runtime.hostDecode() }
        }
        up_pushhostfn(self.L) { L in
            LuaRuntime.host(L) { runtime throws(HostError) in try runtime.hostSetMetatable(debug: false) }
        }
        up_pushhostfn(self.L) { L in
            LuaRuntime.host(L) { runtime throws(HostError) in try runtime.hostSetMetatable(debug: true) }
        }
        up_pushhostfn(self.L) { L in LuaRuntime.host(L) { runtime in runtime.hostGetMetatable() } }
        up_pushhostfn(self.L) { L in
            LuaRuntime.host(L) { _ throws(HostError) in
                throw HostError("debug.getregistry is not available: the registry holds urlpoll's own state")
            }
        }
        up_pushhostfn(self.L) { L in
            LuaRuntime.host(L) { runtime in
                runtime.output(runtime.string(at: 1) ?? "")
                return 0
            }
        }
        try self.run(source: Self.prelude, name: "=urlpoll", nargs: 13)
    }

    /// `urlpoll.post(url, body [, headers])`: records a webhook for the dispatcher and returns at once.
    /// A table body is sent as JSON with `Content-Type: application/json`. (Called as a C function: Lua
    /// guarantees LUA_MINSTACK free slots, more than this uses.)
    private func hostPost() throws(HostError) -> Int32 {
        guard let url = self.string(at: 1) else {
            throw HostError("bad argument #1 to 'post' (URL string expected, got \(self.describe(at: 1)))")
        }
        guard RequestDescription(url: url, headers: []) != nil else {
            // A port out of 1…65535 says so; anything else is not a URL this can post to.
            if let problem = LuaRuntime.problem(withURL: url), problem.hasPrefix("the port") {
                throw HostError("bad argument #1 to 'post' (\(problem))")
            }
            throw HostError(
                "bad argument #1 to 'post' (an http or https URL expected, got \"\(RequestDescription.redacting(url))\")"
            )
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
            case .failure(let error): throw HostError("bad argument #2 to 'post' (\(error.message))")
            }
            headers.append(Header("Content-Type", "application/json"))
        default:
            throw HostError("bad argument #2 to 'post' (string or table expected, got \(self.typeName(at: 2)))")
        }
        switch lua_type(self.L, 3) {
        case LUA_TNONE, LUA_TNIL:
            break
        case LUA_TTABLE:
            lua_pushnil(self.L)
            while lua_next(self.L, 3) != 0 {
                defer { lua_settop(self.L, -2) }
                guard let name = self.string(at: -2), let value = self.string(at: -1) else {
                    throw HostError("bad argument #3 to 'post' (a table of header names to strings expected)")
                }
                headers.removeAll { $0.name.lowercased() == name.lowercased() }
                headers.append(Header(name, value))
            }
        default:
            throw HostError("bad argument #3 to 'post' (table expected, got \(self.typeName(at: 3)))")
        }
        if let problem = headers.lazy.compactMap(\.problem).first {
            throw HostError("bad argument #3 to 'post' (\(problem))")
        }
        self.alerts.append(.post(url: url, body: body, headers: headers))
        return 0
    }

    /// `urlpoll.exec(argv)`: records a command for the dispatcher and returns at once.
    private func hostExec() throws(HostError) -> Int32 {
        self.alerts.append(.exec(argv: try self.execArguments()))
        return 0
    }

    /// `exec`'s first argument, a table of strings (numbers are written as numbers), with a non-empty first.
    func execArguments() throws(HostError) -> [String] {
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
            throw HostError(
                "bad argument #1 to 'exec' (a table of strings expected, such as { \"notify-send\", \"down\" })")
        }
        return argv
    }

    /// `urlpoll.log(level, message)`, behind the prelude's `urlpoll.log(level, ...)`.
    private func hostLog() throws(HostError) -> Int32 {
        let levels: [String: Logger.Level] = ["debug": .debug, "info": .info, "warning": .warning, "error": .error]
        guard let name = self.string(at: 1), let level = levels[name] else {
            throw HostError(
                "bad argument #1 to 'log' (expected \"debug\", \"info\", \"warning\" or \"error\", got "
                    + self.describe(at: 1) + ")")
        }
        let message = self.string(at: 2) ?? ""
        self.logger.log(level: level, "\(message)", metadata: ["script": "\(self.path)"])
        return 0
    }

    /// `urlpoll.json.encode(value)`.
    private func hostEncode() throws(HostError) -> Int32 {
        switch self.encodeJSON(at: 1) {
        case .success(let text):
            self.push(text)
            return 1
        case .failure(let error): throw HostError("bad argument #1 to 'encode' (\(error.message))")
        }
    }

    /// `urlpoll.json.decode(text)`.
    private func hostDecode() throws(HostError) -> Int32 {
        guard let text = self.bytes(at: 1) else {
            throw HostError("bad argument #1 to 'decode' (string expected, got \(self.typeName(at: 1)))")
        }
        if let error = self.pushDecodedJSON(text) {
            throw HostError("bad argument #1 to 'decode' (\(error.message))")
        }
        return 1
    }

    /// `setmetatable(t, mt)`, or `debug.setmetatable(v, mt)` when `debug`: Lua's own, except that a
    /// metatable with a `__gc` field is refused (a finalizer would run outside the instruction budget).
    private func hostSetMetatable(debug: Bool) throws(HostError) -> Int32 {
        let metatable = lua_type(self.L, 2)
        guard metatable == LUA_TNIL || metatable == LUA_TTABLE else {
            throw HostError("bad argument #2 to 'setmetatable' (nil or table expected, got \(self.typeName(at: 2)))")
        }
        if debug {
            guard lua_type(self.L, 1) != LUA_TNONE else {
                throw HostError("bad argument #1 to 'setmetatable' (value expected)")
            }
        } else {
            guard lua_type(self.L, 1) == LUA_TTABLE else {
                throw HostError("bad argument #1 to 'setmetatable' (table expected, got \(self.typeName(at: 1)))")
            }
            if lua_getmetatable(self.L, 1) != 0 {
                let protected = self.rawField("__metatable", of: -1) != LUA_TNIL
                lua_settop(self.L, -2)
                if protected { throw HostError("cannot change a protected metatable") }
            }
        }
        if metatable == LUA_TTABLE && self.rawField("__gc", of: 2) != LUA_TNIL {
            throw HostError("__gc metamethods are not supported: finalizers run outside the instruction budget")
        }
        lua_settop(self.L, 2)
        lua_setmetatable(self.L, 1)
        return 1
    }

    /// `debug.getmetatable(v)`: Lua's own, except that a metatable with a finalizer (the file handles')
    /// gives its `__metatable` field instead, so a script cannot put its own function in that `__gc`.
    private func hostGetMetatable() -> Int32 {
        guard lua_getmetatable(self.L, 1) != 0 else {
            lua_pushnil(self.L)
            return 1
        }
        if self.rawField("__gc", of: -1) != LUA_TNIL {
            lua_pushstring(self.L, "__metatable")
            lua_rawget(self.L, -2)
        }
        return 1
    }

    /// The type of the raw field `name` of the table at `index`, looked at without leaving it on the stack.
    private func rawField(_ name: String, of index: Int32) -> Int32 {
        let table = lua_absindex(self.L, index)
        lua_pushstring(self.L, name)
        let type = lua_rawget(self.L, table)
        lua_settop(self.L, -2)
        return type
    }

    /// Runs the host function `body` for the state `L`, as the C trampoline expects: its result count, or
    /// -1 with the error message on top of the stack. The message is pushed here, after every `defer` in
    /// `body` has restored the stack, so no cleanup can pop it before the trampoline reads it.
    static func host(_ L: OpaquePointer?, _ body: (LuaRuntime) throws(HostError) -> Int32) -> Int32 {
        guard let L else { return 0 }
        let runtime = LuaRuntime.owner(of: L)
        // The function reads its arguments from the thread that called it: a hook's coroutine, or one the
        // script started, as well as the main thread.
        let caller = runtime.L
        runtime.L = L
        defer { runtime.L = caller }
        do {
            return try body(runtime)
        } catch {
            runtime.push(error.message)
            return -1
        }
    }

    /// The runtime that owns the state a host function was called on.
    static func owner(of L: OpaquePointer) -> LuaRuntime {
        Unmanaged<LuaRuntime>.fromOpaque(up_ctxof(L).pointee.owner).takeUnretainedValue()
    }
}
