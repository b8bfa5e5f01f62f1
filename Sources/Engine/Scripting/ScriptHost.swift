import CLua
import Logging
import Synchronization

/// ScriptHost is the one owner of the script's Lua state. Every call into Lua (backoff, report) is a
/// message to this actor, so hooks run one at a time and globals persist between calls.
///
/// A hook that raises, runs past its instruction budget, exceeds the memory limit or returns a wrong
/// value is logged with the script's `file:line`, and the engine carries on with the default.
public actor ScriptHost {
    let runtime: LuaRuntime
    let logger: Logger
    let alerts: (any AlertSink)?
    /// Keeps a hook failing the same way for every URL from flooding the log.
    let limiter: LogLimiter
    /// Where hook calls and failures are counted, when the listener serves metrics.
    let metrics: EngineMetrics?
    /// What the script declared, read once at load.
    public nonisolated let config: ScriptConfig
    /// Sends the requests hooks make with `urlpoll.http`.
    let http: HookHTTPClient = .shared
    /// Measures the deadlines of hooks that wait on `urlpoll.http`.
    let deadlines: DeadlineClock
    /// The settings the engine runs with, when told (``runs(with:)``); else the script's own.
    private nonisolated let running = Mutex<Settings?>(nil)
    /// Each URL's timeout by its displayed URL (what `on_result`, `on_change` and `report` are given), made
    /// when a hook waiting on a request first needs its deadline.
    lazy var timeouts: [String: Duration] = {
        let settings = self.settings
        return Dictionary(
            self.config.targets.map { ($0.displayURL, settings.timeout(for: $0)) },
            uniquingKeysWith: { first, _ in first })
    }()
    /// The store `urlpoll.history` reads: ``HistoryLink/connect(_:)`` it once the `data` setting's store is open.
    public nonisolated let history: HistoryLink
    /// The table each URL's `report(s)` gets, kept from tick to tick.
    var reportTables = ReportTables()

    /// Loads the script at `path`.
    /// - Parameters:
    ///   - args: `urlpoll.args`, the command line's arguments after `--`.
    ///   - limits: The memory cap and instruction budgets.
    /// - Throws: ``ScriptError`` naming the script's `file:line` when it cannot be loaded or declares
    ///   something invalid.
    ///   - text: The script's text when it has no file (the built-in demo); `path` then only names it.
    ///   - alerts: Where `urlpoll.post` and `urlpoll.exec` alerts go; without one they are logged and dropped
    ///     (as `urlpoll check` does).
    ///   - metrics: Where each hook call's duration, failures and the Lua state's size are recorded.
    ///   - history: The `--data` store `urlpoll.history` reads; without one, it raises saying so.
    ///   - clock: What the deadline of a hook waiting on `urlpoll.http` is measured on.
    public init<C: Clock>(
        path: String, text: String? = nil, args: [String] = [], limits: LuaLimits = LuaLimits(),
        alerts: (any AlertSink)? = nil, limiter: LogLimiter = LogLimiter(), metrics: EngineMetrics? = nil,
        history: (any HistoryStore)? = nil, clock: C = ContinuousClock(), logger: Logger
    ) throws(ScriptError) where C.Duration == Duration {
        let runtime = try LuaRuntime(limits: limits, logger: logger, args: args)
        if let history { runtime.history.connect(history) }
        self.history = runtime.history
        if let metrics {
            runtime.hookObserver = { hook, duration, memory in
                metrics.hookCalled(hook, duration: duration, luaMemory: memory)
            }
        }
        self.config = try runtime.loadConfig(path: path, text: text)
        for warning in self.config.warnings { logger.warning("\(warning)") }
        runtime.phase = "idle"
        // The state's size after the load: a script without hooks is never measured again.
        metrics?.scriptLoaded(luaMemory: runtime.memoryUsed)
        self.runtime = runtime
        self.deadlines = DeadlineClock(clock)
        self.logger = logger
        self.alerts = alerts
        self.limiter = limiter
        self.metrics = metrics
        Self.forward(runtime, to: alerts, logger: logger)
    }

    /// Tells the host the settings the engine runs with: the script's, with the command line's overrides
    /// (`--timeout`). A hook's deadline, and its requests' default timeout, count from the timeout they give
    /// its URL. Call it before the first hook runs.
    public nonisolated func runs(with settings: Settings) {
        self.running.withLock { $0 = settings }
    }

    /// The settings hooks' timeouts come from.
    nonisolated var settings: Settings {
        self.running.withLock { $0 } ?? self.config.settings
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

    func forwardAlerts() {
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

// MARK: Errors

extension ScriptHost {
    /// Logs a hook's failure, at most 5 times a minute for the same hook and message.
    func logFailure(_ error: ScriptError, hook: String, url: String, fallback: String) {
        self.metrics?.hookFailed(hook)
        let (pass, held) = self.limiter.admit(hook + "\u{0}" + error.message)
        guard pass else { return }
        self.logger.error(
            "\(error.message) (\(fallback))\(LogLimiter.suffix(held))", metadata: ["hook": "\(hook)", "url": "\(url)"])
        if let traceback = error.traceback {
            self.logger.debug("\(traceback)", metadata: ["hook": "\(hook)", "url": "\(url)"])
        }
    }
}
