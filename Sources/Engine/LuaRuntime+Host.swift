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
        local host_log, host_now, args, version = ...
        urlpoll = { args = args, version = version, now = host_now }

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
        try self.run(source: Self.prelude, name: "=urlpoll", nargs: 4)
    }

    /// The runtime that owns the state a host function was called on.
    static func owner(of L: OpaquePointer) -> LuaRuntime {
        Unmanaged<LuaRuntime>.fromOpaque(up_ctxof(L).pointee.owner).takeUnretainedValue()
    }
}
