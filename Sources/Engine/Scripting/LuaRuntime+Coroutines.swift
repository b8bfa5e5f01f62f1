import CLua

/// HookCall is one call of a hook that may wait (`check`, `on_result`, `on_change`, `report`), run as a
/// Lua coroutine so that `urlpoll.http` can suspend it while its request is in flight.
///
/// The coroutine's thread is anchored in the registry for as long as the call lives, so it survives other
/// hooks running on the state while it waits. One instruction budget covers all of the call's resumes.
struct HookCall {
    /// The coroutine's thread.
    let thread: OpaquePointer
    /// Its registry reference (what keeps it from the garbage collector).
    let ref: Int32
    /// The hook's name, for messages (`check`).
    let name: StaticString
    /// Instructions left for the whole call.
    var budget: Int64
    /// Requests made so far by this call.
    var requests = 0
    /// The most requests this call may make.
    let maximumRequests: Int
    /// Time spent running Lua, summed over the resumes (for the hook-duration metric).
    var running: Duration = .zero
}

/// HookStep is where a hook's coroutine stopped after a resume.
enum HookStep {
    /// It returned; its `count` results are on top of the thread's stack.
    case returned(count: Int32)
    /// It failed (raised, ran out of budget or memory, or yielded on its own): the coroutine is dead.
    case failed(ScriptError)
    /// It called `urlpoll.http` (or `urlpoll.history` of a ``RemoteHistoryStore``) and waits for the answer.
    case waiting(HookRequest)
}

extension LuaRuntime {
    /// Idle hook threads kept at most; more are left to the garbage collector.
    static let idleThreadLimit = 8

    /// Starts `hook` on a coroutine with the arguments `pushArgs` pushes, and runs it until it returns, fails
    /// or waits for a request.
    func startHook(
        _ hook: HookRef, name: StaticString, nargs: Int32, maximumRequests: Int, pushArgs: () -> Void
    ) -> (HookCall, HookStep) {
        let (thread, ref): (OpaquePointer, Int32)
        if let idle = self.idleThreads.popLast() {
            (thread, ref) = idle
        } else {
            thread = lua_newthread(self.main)
            ref = luaL_ref(self.main, UP_REGISTRYINDEX)
        }
        var call = HookCall(
            thread: thread, ref: ref, name: name, budget: self.limits.hookInstructions,
            maximumRequests: maximumRequests)
        // Room for the function, its argument tables and the results; Swift pushes without checks.
        guard lua_checkstack(thread, 20) != 0 else {
            self.abandon(call)
            return (call, .failed(ScriptError(.memory, "\(name): the Lua stack cannot grow")))
        }
        let caller = self.L
        self.L = thread
        lua_rawgeti(thread, UP_REGISTRYINDEX, lua_Integer(hook.ref))
        pushArgs()
        self.L = caller
        let step = self.resume(&call, nargs: nargs)
        return (call, step)
    }

    /// Resumes the waiting `call` with its request's outcome: the response table, or nil and the error.
    func resume(_ call: inout HookCall, with outcome: HookOutcome) -> HookStep {
        let caller = self.L
        self.L = call.thread
        defer { self.L = caller }
        switch outcome {
        case .response(let response, let jar, let session):
            if let session { self.storeCookies(jar, inSessionRef: session) }
            self.push(response)
            return self.resume(&call, nargs: 1)
        case .failure(let message, let jar, let session):
            if let session { self.storeCookies(jar, inSessionRef: session) }
            lua_pushnil(call.thread)
            self.push(message)
            return self.resume(&call, nargs: 2)
        case .history(let summary):
            self.push(summary)
            return self.resume(&call, nargs: 1)
        }
    }

    private func resume(_ call: inout HookCall, nargs: Int32) -> HookStep {
        let caller = self.L
        let outer = self.active
        self.L = call.thread
        self.active = call
        var results: Int32 = 0
        var budget = call.budget
        // Timed only when someone reads the time (the hook-duration metric).
        let started = self.hookObserver != nil ? ContinuousClock.now : nil
        let status = up_resume(call.thread, self.main, nargs, &results, &budget)
        if let started { call.running += ContinuousClock.now - started }
        call.budget = budget
        call.requests = self.active?.requests ?? call.requests
        self.active = outer
        self.L = caller
        switch status {
        case LUA_OK:
            return .returned(count: results)
        case LUA_YIELD:
            guard let request = self.pendingRequest else {
                lua_settop(call.thread, 0)
                self.abandon(call)
                return .failed(
                    ScriptError(
                        .runtime,
                        "\(call.name) called coroutine.yield outside a coroutine of its own; a hook may not yield"))
            }
            self.pendingRequest = nil
            return .waiting(request)
        case LUA_ERRMEM:
            self.abandon(call)
            let mib = self.limits.memory >> 20
            return .failed(ScriptError(.memory, "\(call.name): not enough memory (the script's limit is \(mib) MiB)"))
        default:
            let hitBudget = self.ctxBudgetHit
            let error: ScriptError
            if up_coerror(self.main, call.thread) == LUA_OK {
                let (message, traceback) = Self.splitTraceback(self.popMessageFromMain())
                error = ScriptError(hitBudget ? .budget : .runtime, message, traceback: traceback)
            } else {
                _ = self.popMessageFromMain()
                error = ScriptError(.runtime, "\(call.name) failed (its error could not be read)")
            }
            self.abandon(call)
            return .failed(error)
        }
    }

    /// Reads the results of a call that returned `count` values, with `read` given the index of the first
    /// of `wanted` (missing ones read as nil, as `lua_pcall` pads them), and keeps the thread for the next
    /// call.
    func finish<T>(_ call: HookCall, results count: Int32, wanted: Int32, read: (Int32) -> T) -> T {
        let caller = self.L
        self.L = call.thread
        defer { self.L = caller }
        let first = lua_gettop(call.thread) - count + 1
        lua_settop(call.thread, first + wanted - 1)
        let value = read(first)
        lua_settop(call.thread, 0)
        if self.idleThreads.count < Self.idleThreadLimit {
            self.idleThreads.append((call.thread, call.ref))
        } else {
            luaL_unref(self.main, UP_REGISTRYINDEX, call.ref)
        }
        return value
    }

    /// Lets go of a call that failed or is given up (its deadline passed, urlpoll is stopping): its thread
    /// is never resumed again and the garbage collector takes it.
    func abandon(_ call: HookCall) {
        luaL_unref(self.main, UP_REGISTRYINDEX, call.ref)
    }

    private var ctxBudgetHit: Bool {
        up_ctxof(self.main).pointee.budget_hit != 0
    }

    private func popMessageFromMain() -> String {
        let caller = self.L
        self.L = self.main
        defer { self.L = caller }
        return self.popMessage()
    }
}
