import CLua
import FoundationEssentials
import Logging
import X509

/// LuaRuntime owns one Lua 5.4 state: it loads the script, reads its settings and URLs, and calls its
/// hooks.
///
/// Every call into Lua is protected (``call(_:nargs:nresults:budget:)``); between calls the Swift code
/// uses only API functions that cannot raise. Swift functions exposed to Lua push a message and return
/// -1, and the C trampoline in `CLua/shim.h` raises for them, so a Lua error never unwinds a Swift frame.
///
/// - Important: Not thread-safe. Exactly one owner, a ``ScriptHost``, calls into it, and all its methods
///   are synchronous so no `await` can fall between pushing arguments and reading results.
final class LuaRuntime {
    /// The thread Swift reads and pushes on: the main thread, or the coroutine a hook runs on while it is
    /// being resumed (and, inside a host function, the thread that called it).
    var L: OpaquePointer
    /// The state's main thread: loading, `backoff`, and the owner of every coroutine.
    let main: OpaquePointer
    /// What runs on the main thread now (`"load"`, `"backoff"`), for the error of a function that cannot be
    /// called there (``hostHTTP(session:)``).
    var phase = "load"
    /// The hook coroutine being resumed, if any: the only thread `urlpoll.http` may suspend.
    var active: HookCall?
    /// The request the active hook's coroutine asked for when it last yielded.
    var pendingRequest: HookRequest?
    /// Finished hook coroutines kept for the next hook call, so a hook that makes no request costs no new
    /// thread: (thread, registry reference).
    var idleThreads: [(thread: OpaquePointer, ref: Int32)] = []
    /// The registry reference of the interned ``FieldKey`` names.
    private(set) var fieldKeys: Int32 = LUA_NOREF
    private let ctx: UnsafeMutablePointer<up_ctx>
    let limits: LuaLimits
    let logger: Logger
    /// Where the script's `print` goes.
    let output: Output = .standardOutput
    /// The script's path, once loaded.
    private(set) var path = ""
    /// Alerts recorded by `urlpoll.post` and `urlpoll.exec` since the owner last took them.
    var alerts: [Alert] = []
    /// The `--data` store `urlpoll.history` reads; while it holds none, `urlpoll.history` raises, saying so.
    let history = HistoryLink()
    /// The loaded script's URLs, for `urlpoll.history` to find a URL's ``HistoryKey`` by; nil while the
    /// script's top level runs (its URL list is read after it).
    var historyTargets: [Target]?
    /// Built from ``historyTargets`` on the first `urlpoll.history` call.
    var historyKeys: HistoryKeyIndex?
    /// Told of every hook call: the hook's name, how long the call took and the bytes the state holds after.
    var hookObserver: (@Sendable (_ hook: String, _ duration: Duration, _ luaMemory: Int) -> Void)?
    /// The roots of each `ca_file` a hook's request named (`urlpoll.http`'s `tls` option), by its full
    /// path: read once, as a URL's `ca_file` is read once at load.
    var hookRoots: [String: [Certificate]] = [:]
    /// Bytes the Lua state holds now.
    var memoryUsed: Int { self.ctx.pointee.used }

    init(limits: LuaLimits, logger: Logger, args: [String]) throws(ScriptError) {
        self.limits = limits
        self.logger = logger
        self.ctx = .allocate(capacity: 1)
        self.ctx.initialize(
            to: up_ctx(
                used: 0, peak: 0, limit: limits.memory, enforce: 0, budget: 0, budget_hit: 0, owner: nil))
        guard let L = up_newstate(self.ctx) else {
            self.ctx.deallocate()
            throw ScriptError(.memory, "cannot create a Lua state")
        }
        self.L = L
        self.main = L
        self.ctx.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        if up_openlibs(L) != LUA_OK {
            throw ScriptError(.runtime, "cannot open the Lua standard libraries: \(self.popMessage())")
        }
        try self.installHostAPI(args: args)
        try self.installHTTP()
        try self.installHistory()
        try self.installModules()
        self.fieldKeys = self.internFieldKeys()
    }

    deinit {
        lua_close(self.main)
        self.ctx.deinitialize(count: 1)
        self.ctx.deallocate()
    }

    // MARK: Loading

    /// Loads and runs the script at `path`. Lua's own messages then read `path:line: ...`.
    func load(path: String) throws(ScriptError) {
        self.path = path
        try self.addScriptDirectoryToPackagePath(path)
        let top = lua_gettop(self.L)
        defer { lua_settop(self.L, top) }
        guard up_loadfile(self.L, path) == LUA_OK else {
            throw ScriptError(.syntax, self.popMessage())
        }
        if let error = self.call(nargs: 0, nresults: 0, budget: self.limits.loadInstructions, what: path) {
            throw error
        }
    }

    /// Loads and runs script text that has no file (the built-in demo); messages read `name:line: ...`.
    func load(source: String, name: String) throws(ScriptError) {
        self.path = name
        let top = lua_gettop(self.L)
        defer { lua_settop(self.L, top) }
        try self.compile(source, chunkName: "@" + name)
        if let error = self.call(nargs: 0, nresults: 0, budget: self.limits.loadInstructions, what: name) {
            throw error
        }
    }

    private func compile(_ source: String, chunkName: String) throws(ScriptError) {
        let status = source.utf8CString.withUnsafeBufferPointer { buf in
            up_loadbuffer(self.L, buf.baseAddress, buf.count - 1, chunkName)
        }
        guard status == LUA_OK else { throw ScriptError(.syntax, self.popMessage()) }
    }

    /// Runs trusted source text (the prelude) with the `nargs` values on top of the stack as its `...`.
    func run(source: String, name: String, nargs: Int32) throws(ScriptError) {
        do {
            try self.compile(source, chunkName: name)
        } catch {
            lua_settop(self.L, -Int32(nargs) - 1)
            throw error
        }
        up_insert(self.L, -Int32(nargs) - 1)
        if let error = self.call(nargs: nargs, nresults: 0, budget: self.limits.loadInstructions, what: name) {
            throw error
        }
    }

    // MARK: Protected calls

    /// Calls the function below `nargs` arguments on the stack, in protected mode, with the memory cap on
    /// and an instruction budget. On success the results are left on the stack and `nil` is returned; on
    /// failure the stack is back to where it was below the function and the error is returned.
    func call(nargs: Int32, nresults: Int32, budget: Int64, what: String) -> ScriptError? {
        let status = up_pcall(self.L, nargs, nresults, budget)
        if status == LUA_OK { return nil }
        if status == LUA_ERRMEM {
            lua_settop(self.L, -2)
            let mib = self.limits.memory >> 20
            return ScriptError(
                .memory,
                "\(what): not enough memory (the script's limit is \(mib) MiB; raise it with --lua-memory, as in --lua-memory \(mib * 4), or make the script keep less: a list of a million URLs takes about 100 MiB)"
            )
        }
        let full = self.popMessage()
        let (message, traceback) = Self.splitTraceback(full)
        let kind: ScriptError.Kind = self.ctx.pointee.budget_hit != 0 ? .budget : .runtime
        return ScriptError(kind, message, traceback: traceback)
    }

    /// Calls the function held by `hook` with arguments pushed by `pushArgs`, and hands the index of its
    /// first of `nresults` results to `read` while they are still on the stack.
    func callHook<T>(
        _ hook: HookRef, name: String, nargs: Int32, nresults: Int32 = 1, pushArgs: () -> Void,
        read: (Int32) -> T
    ) -> Result<T, ScriptError> {
        let top = lua_gettop(self.L)
        defer { lua_settop(self.L, top) }
        // Room for the function, its argument tables and the results; Swift pushes without checks.
        guard lua_checkstack(self.L, 20) != 0 else {
            return .failure(ScriptError(.memory, "\(name): the Lua stack cannot grow"))
        }
        lua_rawgeti(self.L, UP_REGISTRYINDEX, lua_Integer(hook.ref))
        pushArgs()
        self.phase = name
        defer { self.phase = "idle" }
        let started = self.hookObserver != nil ? ContinuousClock.now : nil
        let error = self.call(nargs: nargs, nresults: nresults, budget: self.limits.hookInstructions, what: name)
        if let started, let observer = self.hookObserver {
            observer(name, ContinuousClock.now - started, self.ctx.pointee.used)
        }
        if let error { return .failure(error) }
        return .success(read(top + 1))
    }

    // MARK: Reading values (none of these can raise)

    /// Pushes the raw value of global `name`, ignoring any metatable on `_G`; returns its type.
    @discardableResult
    func pushGlobal(_ name: String) -> Int32 {
        lua_rawgeti(self.L, UP_REGISTRYINDEX, lua_Integer(LUA_RIDX_GLOBALS))
        lua_pushstring(self.L, name)
        let type = lua_rawget(self.L, -2)
        up_remove(self.L, -2)
        return type
    }

    /// The string at `index`, only if it is a string (numbers are not converted).
    func string(at index: Int32) -> String? {
        guard lua_type(self.L, index) == LUA_TSTRING else { return nil }
        var length = 0
        guard let bytes = lua_tolstring(self.L, index, &length) else { return nil }
        return bytes.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }

    /// The bytes of the string at `index`, only if it is a string; binary-safe.
    func bytes(at index: Int32) -> [UInt8]? {
        guard lua_type(self.L, index) == LUA_TSTRING else { return nil }
        var length = 0
        guard let bytes = lua_tolstring(self.L, index, &length) else { return nil }
        return bytes.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }

    /// The number at `index`, only if it is a number.
    func number(at index: Int32) -> Double? {
        guard lua_type(self.L, index) == LUA_TNUMBER else { return nil }
        return lua_tonumberx(self.L, index, nil)
    }

    /// The integer at `index`, if it is a number with an integral value.
    func integer(at index: Int32) -> Int? {
        guard let number = self.number(at: index), number.isFinite, number == number.rounded(),
            abs(number) < 1e15
        else { return nil }
        return Int(number)
    }

    /// Lua's name for the type of the value at `index`, for messages.
    func typeName(at index: Int32) -> String {
        String(cString: lua_typename(self.L, lua_type(self.L, index)))
    }

    /// Describes the value at `index` for an error message: `number 0`, `string "x"`, `nil`.
    func describe(at index: Int32) -> String {
        if let s = self.string(at: index) {
            // A long string (a 1 MiB name) is shown by its start and length, not whole.
            let bytes = s.utf8.count
            return bytes > 64
                ? "string \"\(s.limited(toUTF8Bytes: 40))\" of \(bytes.counted("byte"))" : "string \"\(s)\""
        }
        if let n = self.number(at: index) { return "number \(formatSeconds(n))" }
        if lua_type(self.L, index) == LUA_TBOOLEAN { return lua_toboolean(self.L, index) != 0 ? "true" : "false" }
        return self.typeName(at: index)
    }

    /// Keeps the function at `index` in the registry and returns a reference to it with its location.
    func reference(functionAt index: Int32) -> HookRef {
        var buffer = [CChar](repeating: 0, count: 512)
        up_funcwhere(self.L, index, &buffer, buffer.count)
        lua_pushvalue(self.L, index)
        let ref = luaL_ref(self.L, UP_REGISTRYINDEX)
        return HookRef(ref: ref, location: buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
    }

    // MARK: Pushing values (memory only; the cap is off outside protected calls)

    func push(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) { _ = lua_pushlstring(self.L, $0.baseAddress, $0.count) }
        }
    }

    func push(_ string: String) {
        var s = string
        s.withUTF8 { buf in
            buf.withMemoryRebound(to: CChar.self) { _ = lua_pushlstring(self.L, $0.baseAddress, $0.count) }
        }
    }

    // MARK: Messages

    /// Pops the error value on top of the stack as text.
    func popMessage() -> String {
        let message = self.string(at: -1) ?? "(error object is a \(self.typeName(at: -1)) value)"
        lua_settop(self.L, -2)
        return message
    }

    static func splitTraceback(_ full: String) -> (message: String, traceback: String?) {
        let lines = full.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: "stack traceback:") else { return (full, nil) }
        return (lines[..<start].joined(separator: "\n"), lines[start...].joined(separator: "\n"))
    }
}

@available(*, unavailable)
extension LuaRuntime: Sendable {}
