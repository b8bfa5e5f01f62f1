import CLua
import Logging

/// ScriptHost is the one owner of the script's Lua state. Every call into Lua (backoff, report) is a
/// message to this actor, so hooks run one at a time and globals persist between calls.
///
/// A hook that raises, runs past its instruction budget, exceeds the memory limit or returns a wrong
/// value is logged with the script's `file:line`, and the engine carries on with the default.
public actor ScriptHost {
    private let runtime: LuaRuntime
    private let logger: Logger
    private let alerts: (any AlertSink)?
    /// Keeps a hook failing the same way for every URL from flooding the log.
    private let limiter: LogLimiter
    /// What the script declared, read once at load.
    public nonisolated let config: ScriptConfig

    /// Loads the script at `path`.
    /// - Parameters:
    ///   - args: `urlpoll.args`, the command line's arguments after `--`.
    ///   - limits: The memory cap and instruction budgets.
    /// - Throws: ``ScriptError`` naming the script's `file:line` when it cannot be loaded or declares
    ///   something invalid.
    ///   - text: The script's text when it has no file (the built-in demo); `path` then only names it.
    ///   - alerts: Where `urlpoll.post` and `urlpoll.exec` alerts go; without one they are logged and dropped
    ///     (as `urlpoll check` does).
    public init(
        path: String, text: String? = nil, args: [String] = [], limits: LuaLimits = LuaLimits(),
        alerts: (any AlertSink)? = nil, limiter: LogLimiter = LogLimiter(), logger: Logger
    ) throws(ScriptError) {
        let runtime = try LuaRuntime(limits: limits, logger: logger, args: args)
        self.config = try runtime.loadConfig(path: path, text: text)
        self.runtime = runtime
        self.logger = logger
        self.alerts = alerts
        self.limiter = limiter
        Self.forward(runtime, to: alerts, logger: logger)
    }

    /// Hands the alerts a hook recorded to the dispatcher, after the hook has returned.
    private static func forward(_ runtime: LuaRuntime, to sink: (any AlertSink)?, logger: Logger) {
        guard !runtime.alerts.isEmpty else { return }
        let alerts = runtime.alerts
        runtime.alerts.removeAll()
        for alert in alerts {
            if let sink {
                sink.enqueue(alert)
            } else {
                logger.info("alert not sent (nothing is polled here)", metadata: ["alert": "\(alert.summary)"])
            }
        }
    }

    private func forwardAlerts() {
        Self.forward(self.runtime, to: self.alerts, logger: self.logger)
    }

    /// The policy Sleep should use: this host when the script writes backoff in Lua, else the built-in
    /// linear policy, which never crosses into Lua.
    public nonisolated var sleepPolicy: any SleepPolicy {
        self.config.hasBackoffHook ? self : LinearBackoff()
    }

    /// The reporter the monitor should use: this host when the script defines `report`, else `fallback`.
    public nonisolated func reporter(fallback: any Reporter) -> any Reporter {
        self.config.report != nil ? self : fallback
    }

    /// This host as a StateObserver when the script defines `on_change` or `on_result`.
    public nonisolated var observer: (any StateObserver)? {
        self.config.onChange != nil || self.config.onResult != nil ? self : nil
    }

    /// This host as a Checker when any URL has a `check` hook.
    public nonisolated var checker: (any Checker)? {
        self.config.targets.contains { $0.captureBody } ? self : nil
    }
}

// MARK: backoff(r)

extension ScriptHost: SleepPolicy {
    public func delay(for resource: Resource, settings: Settings) -> Duration {
        let fallback = Backoff.linear(
            interval: settings.interval(for: resource.target), errorBackoff: settings.errorBackoff,
            errorCount: resource.errorCount)
        guard let hook = resource.target.backoff ?? self.config.backoff else { return fallback }
        let result = self.runtime.callHook(
            hook, name: "backoff", nargs: 1,
            pushArgs: { self.pushBackoffArgument(resource, settings: settings, default: fallback) },
            read: { index -> Result<Duration, ScriptError> in
                if let seconds = self.runtime.number(at: index), let delay = Backoff.duration(fromSeconds: seconds) {
                    return .success(delay)
                }
                let got = self.runtime.describe(at: index)
                return .failure(
                    ScriptError(
                        .badReturn,
                        "\(hook.location): backoff returned \(got); expected a finite number of seconds >= 0"))
            })
        self.forwardAlerts()
        switch result.flatMap({ $0 }) {
        case .success(let delay):
            return delay
        case .failure(let error):
            self.logFailure(
                error, hook: "backoff", url: resource.target.url,
                fallback: "using the default \(formatSeconds(fallback.seconds)) s for this sleep")
            return fallback
        }
    }

    private func pushBackoffArgument(_ resource: Resource, settings: Settings, default fallback: Duration) {
        let state = resource.state
        let lua = self.runtime
        lua.beginRecord(fields: 13)
        lua.set(.defaultSleep, fallback.seconds)
        lua.setURLAndName(resource.target.url, resource.target.name)
        lua.set(.errorCount, resource.errorCount)
        lua.set(.status, state?.status)
        lua.set(.code, state?.code)
        lua.set(.ok, state?.ok ?? false)
        lua.set(.state, state?.health.rawValue)
        lua.set(.latency, (state?.latency ?? .zero).seconds)
        lua.set(.polls, resource.polls)
        if let last = resource.lastSleep { lua.set(.lastSleep, last.seconds) }
        lua.set(.interval, settings.interval(for: resource.target).seconds)
        if resource.target.captureHeaders {
            lua.set(.headers) { self.pushHeaders(resource.headers) }
        }
        lua.endRecord()
    }

    /// Pushes headers as a table keyed by lower-case name; repeated headers are joined with ", ".
    private func pushHeaders(_ headers: [Header]) {
        var merged: [String: String] = [:]
        for header in headers {
            let name = header.name.lowercased()
            merged[name] = merged[name].map { $0 + ", " + header.value } ?? header.value
        }
        lua_createtable(self.runtime.L, 0, Int32(merged.count))
        for (name, value) in merged {
            self.runtime.push(name)
            self.runtime.push(value)
            lua_rawset(self.runtime.L, -3)
        }
    }
}

// MARK: report(s)

extension ScriptHost: Reporter {
    public func report(_ states: [State]) {
        guard let hook = self.config.report else { return }
        for (i, state) in states.enumerated() {
            let result = self.runtime.callHook(
                hook, name: "report", nargs: 1,
                pushArgs: { self.pushState(state, index: i + 1, count: states.count) },
                read: { _ in () })
            self.forwardAlerts()
            if case .failure(let error) = result {
                self.logFailure(error, hook: "report", url: state.url, fallback: "skipping this URL's report")
            }
        }
    }

    private func pushState(_ state: State, index: Int? = nil, count: Int? = nil) {
        let lua = self.runtime
        lua.beginRecord(fields: 16)
        lua.setURLAndName(state.url, state.name)
        lua.set(.status, state.status)
        lua.set(.code, state.code)
        lua.set(.ok, state.ok)
        lua.set(.state, state.health.rawValue)
        lua.set(.error, state.error)
        lua.set(.detail, state.detail)
        lua.set(.errorCount, state.errorCount)
        lua.set(.latency, state.latency.seconds)
        lua.set(.polls, state.polls)
        lua.set(.since, state.since)
        lua.set(.checkedAt, state.checkedAt)
        lua.set(.lateness, state.lateness.seconds)
        lua.set(.index, index)
        lua.set(.count, count)
        lua.endRecord()
    }
}

// MARK: on_change(s, prev) and on_result(s, prev)

extension ScriptHost: StateObserver {
    public func polled(_ state: State, previous: State?) {
        guard let hook = self.config.onResult else { return }
        self.callObserver(hook, name: "on_result", state, previous)
    }

    public func changed(_ state: State, previous: State?) {
        guard let hook = self.config.onChange else { return }
        self.callObserver(hook, name: "on_change", state, previous)
    }

    private func callObserver(_ hook: HookRef, name: String, _ state: State, _ previous: State?) {
        let result = self.runtime.callHook(
            hook, name: name, nargs: 2,
            pushArgs: {
                self.pushState(state)
                if let previous { self.pushState(previous) } else { lua_pushnil(self.runtime.L) }
            },
            read: { _ in () })
        self.forwardAlerts()
        if case .failure(let error) = result {
            self.logFailure(error, hook: name, url: state.url, fallback: "continuing")
        }
    }
}

// MARK: check(res)

/// Checker turns a response into a verdict.
public protocol Checker: Sendable {
    /// The verdict on `result` for `target`, or nil to let `expect` decide.
    func check(_ target: Target, _ result: ProbeResult) async -> Verdict?
}

extension ScriptHost: Checker {
    public func check(_ target: Target, _ result: ProbeResult) -> Verdict? {
        guard let hook = target.check ?? self.config.check,
            case .response(let code, let reason) = result.outcome
        else { return nil }
        let verdict = self.runtime.callHook(
            hook, name: "check", nargs: 1, nresults: 2,
            pushArgs: {
                let lua = self.runtime
                lua.beginRecord(fields: 9)
                lua.setURLAndName(target.url, target.name)
                lua.set(.status, reason.isEmpty ? "\(code)" : "\(code) \(reason)")
                lua.set(.code, code)
                lua.set(.ok, target.expect.contains(code))
                lua.set(.latency, result.latency.seconds)
                lua.set(.headers) { self.pushHeaders(result.headers) }
                lua.set(.body) { lua.push(bytes: result.body ?? []) }
                lua.endRecord()
            },
            read: { first in self.readVerdict(hook, at: first) })
        self.forwardAlerts()
        switch verdict.flatMap({ $0 }) {
        case .success(let verdict):
            return verdict
        case .failure(let error):
            self.logFailure(error, hook: "check", url: target.url, fallback: "judging by expect instead")
            return nil
        }
    }

    /// Reads check's results: `"up" | "degraded" | "down"` (or true/false, or nil) and an optional message.
    private func readVerdict(_ hook: HookRef, at value: Int32) -> Result<Verdict?, ScriptError> {
        let L = self.runtime.L
        let message = self.runtime.string(at: value + 1)
        switch lua_type(L, value) {
        case LUA_TNIL:
            return .success(nil)
        case LUA_TBOOLEAN:
            return .success(Verdict(lua_toboolean(L, value) != 0 ? .up : .down, message: message))
        default:
            if let text = self.runtime.string(at: value), let health = Health(rawValue: text) {
                return .success(Verdict(health, message: message))
            }
            return .failure(
                ScriptError(
                    .badReturn,
                    "\(hook.location): check returned \(self.runtime.describe(at: value)); expected \"up\", "
                        + "\"degraded\" or \"down\" (and an optional message)"))
        }
    }
}

// MARK: Errors

extension ScriptHost {
    /// Logs a hook's failure, at most 5 times a minute for the same hook and message.
    private func logFailure(_ error: ScriptError, hook: String, url: String, fallback: String) {
        let (pass, held) = self.limiter.admit(hook + "\u{0}" + error.message)
        guard pass else { return }
        self.logger.error(
            "\(error.message) (\(fallback))\(LogLimiter.suffix(held))", metadata: ["hook": "\(hook)", "url": "\(url)"])
        if let traceback = error.traceback {
            self.logger.debug("\(traceback)", metadata: ["hook": "\(hook)", "url": "\(url)"])
        }
    }
}
