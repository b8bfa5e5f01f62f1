import CLua

/// DeadlineClock measures hook deadlines on the clock the engine runs on (a manual one in tests), as
/// offsets from the moment it was made.
struct DeadlineClock: Sendable {
    let now: @Sendable () -> Duration
    let sleep: @Sendable (_ until: Duration) async throws -> Void

    init<C: Clock>(_ clock: C) where C.Duration == Duration {
        let origin = clock.now
        self.now = { origin.duration(to: clock.now) }
        self.sleep = { try await clock.sleep(until: origin.advanced(by: $0), tolerance: nil) }
    }
}

// The resume protocol. A hook that may wait (check, on_result, on_change, report) runs as a coroutine. When
// it calls urlpoll.http its coroutine yields, and the resume in progress returns: the Lua state is then
// between calls, as after any hook, and the actor awaits the request with nothing of Lua's on the Swift
// stack. Meanwhile other messages to the actor run other hooks (on other coroutines, or backoff on the main
// thread). When the response comes, the actor resumes the coroutine; every resume, like every other call
// into Lua, is made by this actor alone.
extension ScriptHost {
    /// Why a hook call is over without a result.
    private enum Wait: Sendable {
        case outcome(HookOutcome)
        case deadline
        case stopped
    }

    /// How a hook call started: over at once (a hook that makes no request), or waiting on its first.
    enum HookStart<T> {
        case done(Result<T, ScriptError>)
        case waiting(HookCall, HookRequest)
    }

    /// Runs `hook` as a coroutine with the arguments `pushArgs` pushes, waiting on each request it makes,
    /// and hands the index of its first of `nresults` results to `read`.
    ///
    /// - Parameters:
    ///   - timeout: The hook's URL's timeout, from which its deadline is counted (``LuaLimits/hookDeadlineTimeouts``
    ///     times it, from its first request), and each request's default timeout.
    /// - Returns: `read`'s value; or the hook's error, ``ScriptError/Kind/deadline`` when it was abandoned at
    ///   its deadline, or ``ScriptError/Kind/stopped`` when its task was cancelled while it waited.
    func runHook<T>(
        _ hook: HookRef, name: StaticString, timeout: @autoclosure () -> Duration, nargs: Int32, nresults: Int32 = 1,
        pushArgs: () -> Void, read: (Int32) -> T
    ) async -> Result<T, ScriptError> {
        switch self.startHook(hook, name: name, nargs: nargs, nresults: nresults, pushArgs: pushArgs, read: read) {
        case .done(let result):
            return result
        case .waiting(let call, let request):
            return await self.finishHook(
                call, waitingFor: request, timeout: timeout(), nresults: nresults, read: read)
        }
    }

    /// Starts `hook` on a coroutine and runs it until it returns, fails or waits for its first request; the
    /// whole call when it makes none, with no suspension (``runHook(_:name:timeout:nargs:nresults:pushArgs:read:)``
    /// in two steps, for a caller that calls many hooks in a row: `report`).
    func startHook<T>(
        _ hook: HookRef, name: StaticString, nargs: Int32, nresults: Int32 = 1, pushArgs: () -> Void,
        read: (Int32) -> T
    ) -> HookStart<T> {
        let lua = self.runtime
        let (call, step) = lua.startHook(
            hook, name: name, nargs: nargs, maximumRequests: lua.limits.httpRequests, pushArgs: pushArgs)
        self.forwardAlerts()
        switch step {
        case .returned(let count):
            self.observe(call)
            return .done(.success(lua.finish(call, results: count, wanted: nresults, read: read)))
        case .failed(let error):
            self.observe(call)
            return .done(.failure(error))
        case .waiting(let request):
            return .waiting(call, request)
        }
    }

    /// Waits on the request a hook call started by ``startHook(_:name:nargs:nresults:pushArgs:read:)`` made,
    /// resumes it with the outcome, and so on until it returns, fails, passes its deadline or is cancelled.
    func finishHook<T>(
        _ call: HookCall, waitingFor first: HookRequest, timeout: Duration, nresults: Int32 = 1, read: (Int32) -> T
    ) async -> Result<T, ScriptError> {
        let lua = self.runtime
        var call = call
        var request = first
        let length = timeout * lua.limits.hookDeadlineTimeouts
        let deadline = self.deadlines.now() + length
        defer { self.observe(call) }
        while true {
            let left = max(.milliseconds(1), deadline - self.deadlines.now())
            let step: HookStep
            switch await self.wait(for: request, timeout: min(request.timeout ?? timeout, left), until: deadline) {
            case .outcome(let outcome):
                step = lua.resume(&call, with: outcome)
            case .deadline:
                lua.abandon(call)
                if let session = request.session { lua.storeCookies(nil, inSessionRef: session) }
                return .failure(
                    ScriptError(
                        .deadline,
                        "\(request.location): \(call.name) abandoned at its deadline of \(formatSeconds(length.seconds)) s "
                            + "(\(formatSeconds(lua.limits.hookDeadlineTimeouts)) × the URL's timeout) while waiting "
                            + "for \(request.awaited)"))
            case .stopped:
                lua.abandon(call)
                if let session = request.session { lua.storeCookies(nil, inSessionRef: session) }
                return .failure(ScriptError(.stopped, "\(call.name) abandoned: urlpoll is stopping"))
            }
            self.forwardAlerts()
            switch step {
            case .returned(let count):
                return .success(lua.finish(call, results: count, wanted: nresults, read: read))
            case .failed(let error):
                return .failure(error)
            case .waiting(let next):
                request = next
            }
        }
    }

    /// Tells the hook-duration metric, when there is one, how long the call ran Lua.
    private func observe(_ call: HookCall) {
        guard let observer = self.runtime.hookObserver else { return }
        observer("\(call.name)", call.running, Int(up_ctxof(self.runtime.main).pointee.used))
    }

    /// Sends `request` off the actor and waits for its outcome, the deadline `until`, or cancellation,
    /// whichever comes first.
    private nonisolated func wait(for request: HookRequest, timeout: Duration, until deadline: Duration) async -> Wait {
        let http = self.http
        let deadlines = self.deadlines
        return await withTaskGroup(of: Wait.self) { group in
            group.addTask {
                if let read = request.history { return .outcome(await read.perform()) }
                return .outcome(await http.perform(request, timeout: timeout))
            }
            group.addTask {
                do {
                    try await deadlines.sleep(deadline)
                    return .deadline
                } catch {
                    return .stopped
                }
            }
            defer { group.cancelAll() }
            let first = await group.next() ?? .stopped
            return Task.isCancelled ? .stopped : first
        }
    }

    /// The timeout of the URL a State is about (its own, or the script's `timeout`).
    func timeout(forURL url: String) -> Duration {
        self.timeouts[url] ?? self.settings.timeout
    }
}
