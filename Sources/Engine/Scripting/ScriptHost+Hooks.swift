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

    /// Runs `hook` as a coroutine with the arguments `pushArgs` pushes, waiting on each request it makes,
    /// and hands the index of its first of `nresults` results to `read`.
    ///
    /// - Parameters:
    ///   - timeout: The hook's URL's timeout, from which its deadline is counted (``LuaLimits/hookDeadlineTimeouts``
    ///     times it, from its first request), and each request's default timeout.
    /// - Returns: `read`'s value; or the hook's error, ``ScriptError/Kind/deadline`` when it was abandoned at
    ///   its deadline, or ``ScriptError/Kind/stopped`` when its task was cancelled while it waited.
    func runHook<T>(
        _ hook: HookRef, name: String, timeout: @autoclosure () -> Duration, nargs: Int32, nresults: Int32 = 1,
        pushArgs: () -> Void, read: (Int32) -> T
    ) async -> Result<T, ScriptError> {
        let lua = self.runtime
        var (call, step) = lua.startHook(
            hook, name: name, nargs: nargs, maximumRequests: lua.limits.httpRequests, pushArgs: pushArgs)
        var deadline: (at: Duration, length: Duration)?
        defer {
            if let observer = lua.hookObserver { observer(name, call.running, Int(up_ctxof(lua.main).pointee.used)) }
        }
        while true {
            self.forwardAlerts()
            switch step {
            case .returned(let count):
                return .success(lua.finish(call, results: count, wanted: nresults, read: read))
            case .failed(let error):
                return .failure(error)
            case .waiting(let request):
                if deadline == nil {
                    let length = timeout() * lua.limits.hookDeadlineTimeouts
                    deadline = (self.deadlines.now() + length, length)
                }
                let (at, length) = deadline!
                let left = max(.milliseconds(1), at - self.deadlines.now())
                switch await self.wait(for: request, timeout: min(request.timeout ?? timeout(), left), until: at) {
                case .outcome(let outcome):
                    step = lua.resume(&call, with: outcome)
                case .deadline:
                    lua.abandon(call)
                    if let session = request.session { lua.storeCookies(nil, inSessionRef: session) }
                    return .failure(
                        ScriptError(
                            .deadline,
                            "\(request.location): \(name) abandoned at its deadline of \(formatSeconds(length.seconds)) s "
                                + "(\(formatSeconds(lua.limits.hookDeadlineTimeouts)) × the URL's timeout) while waiting "
                                + "for \(request.method) \(request.displayURL)"))
                case .stopped:
                    lua.abandon(call)
                    if let session = request.session { lua.storeCookies(nil, inSessionRef: session) }
                    return .failure(ScriptError(.stopped, "\(name) abandoned: urlpoll is stopping"))
                }
            }
        }
    }

    /// Sends `request` off the actor and waits for its outcome, the deadline `until`, or cancellation,
    /// whichever comes first.
    private nonisolated func wait(for request: HookRequest, timeout: Duration, until deadline: Duration) async -> Wait {
        let http = self.http
        let deadlines = self.deadlines
        return await withTaskGroup(of: Wait.self) { group in
            group.addTask { .outcome(await http.perform(request, timeout: timeout)) }
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
        self.timeouts[url] ?? self.config.settings.timeout
    }
}
