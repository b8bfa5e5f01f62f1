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
    /// What the script declared, read once at load.
    public nonisolated let config: ScriptConfig

    /// Loads the script at `path`.
    /// - Parameters:
    ///   - args: `urlpoll.args`, the command line's arguments after `--`.
    ///   - limits: The memory cap and instruction budgets.
    /// - Throws: ``ScriptError`` naming the script's `file:line` when it cannot be loaded or declares
    ///   something invalid.
    ///   - text: The script's text when it has no file (the built-in demo); `path` then only names it.
    public init(
        path: String, text: String? = nil, args: [String] = [], limits: LuaLimits = LuaLimits(), logger: Logger
    ) throws(ScriptError) {
        let runtime = try LuaRuntime(limits: limits, logger: logger, args: args)
        self.config = try runtime.loadConfig(path: path, text: text)
        self.runtime = runtime
        self.logger = logger
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
            pushArgs: { self.pushBackoffArgument(resource, settings: settings) },
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

    private func pushBackoffArgument(_ resource: Resource, settings: Settings) {
        let state = resource.state
        lua_createtable(self.runtime.L, 0, 10)
        self.runtime.setField("url", resource.target.url)
        self.runtime.setField("name", resource.target.name)
        self.runtime.setField("error_count", resource.errorCount)
        self.runtime.setField("status", state?.status)
        self.runtime.setField("code", state?.code)
        self.runtime.setField("ok", state?.ok ?? false)
        self.runtime.setField("latency", (state?.latency ?? .zero).seconds)
        self.runtime.setField("polls", resource.polls)
        if let last = resource.lastSleep { self.runtime.setField("last_sleep", last.seconds) }
        self.runtime.setField("interval", settings.interval(for: resource.target).seconds)
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
            if case .failure(let error) = result {
                self.logFailure(error, hook: "report", url: state.url, fallback: "skipping this URL's report")
            }
        }
    }

    private func pushState(_ state: State, index: Int, count: Int) {
        lua_createtable(self.runtime.L, 0, 14)
        self.runtime.setField("url", state.url)
        self.runtime.setField("name", state.name)
        self.runtime.setField("status", state.status)
        self.runtime.setField("code", state.code)
        self.runtime.setField("ok", state.ok)
        self.runtime.setField("error", state.error)
        self.runtime.setField("detail", state.detail)
        self.runtime.setField("error_count", state.errorCount)
        self.runtime.setField("latency", state.latency.seconds)
        self.runtime.setField("polls", state.polls)
        self.runtime.setField("since", state.since)
        self.runtime.setField("checked_at", state.checkedAt)
        self.runtime.setField("index", index)
        self.runtime.setField("count", count)
    }
}

// MARK: Errors

extension ScriptHost {
    private func logFailure(_ error: ScriptError, hook: String, url: String, fallback: String) {
        self.logger.error("\(error.message) (\(fallback))", metadata: ["hook": "\(hook)", "url": "\(url)"])
        if let traceback = error.traceback {
            self.logger.debug("\(traceback)", metadata: ["hook": "\(hook)", "url": "\(url)"])
        }
    }
}
