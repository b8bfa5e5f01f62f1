import ArgumentParser
import Engine
import Logging

/// Output formats for reports.
enum Format: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

/// The history store's options, for `run` and `once`.
struct HistoryOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Keep history in DIR/urlpoll.sqlite (each URL's state, its changes, per-minute and per-hour rollups) and resume from it on start; serves urlpoll.history and /status (one urlpoll per folder).",
            valueName: "dir"))
    var data: String?

    // `.unconditional`: a value such as `-1` is taken as the value (and refused with the range), not as an
    // unknown option leaving the option without one.
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "With --data or --store: days to keep per-minute rollups (then only per-hour ones remain).",
            valueName: "days"))
    var minuteRetention: Double = 7

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("With --data or --store: days to keep per-hour rollups and changes.", valueName: "days"))
    var hourRetention: Double = 400

    /// The shortest retention: an hour, as 0.0416 days (1/24 is 0.041666…, and "0.0416" is how one writes
    /// it to four places).
    static let oneHour = 0.0416

    func validate() throws {
        for (name, value) in [
            ("--minute-retention", self.minuteRetention), ("--hour-retention", self.hourRetention),
        ]
        where !(value.isFinite && (Self.oneHour...36_500).contains(value)) {
            throw ValidationError("\(name) must be a number of days from 0.0416 (1 hour) to 36500.")
        }
    }

    var retention: HistoryWriter.Retention {
        var retention = HistoryWriter.Retention()
        retention.minutes = .seconds(self.minuteRetention * 86_400)
        retention.hours = .seconds(self.hourRetention * 86_400)
        return retention
    }
}

/// Options shared by the commands that poll: overrides of the script's settings and the output format.
struct PollOptions: ParsableArguments {
    @Option(help: "Poller tasks that probe in parallel (overrides `pollers`).")
    var pollers: Int?

    @Option(
        help: ArgumentHelp("Seconds between polls of a healthy URL (overrides `poll_interval`).", valueName: "seconds"))
    var pollInterval: Double?

    @Option(help: ArgumentHelp("Seconds between reports (overrides `status_interval`).", valueName: "seconds"))
    var statusInterval: Double?

    @Option(
        help: ArgumentHelp("Extra seconds per consecutive failure (overrides `error_backoff`).", valueName: "seconds"))
    var errorBackoff: Double?

    @Option(help: ArgumentHelp("Seconds before a request is abandoned (overrides `timeout`).", valueName: "seconds"))
    var timeout: Double?

    @Option(
        help:
            "Report format when the script has no `report` hook: text (the seed's block) or json (one object per line)."
    )
    var format: Format = .text

    func validate() throws {
        if let pollers, !(1...10_000).contains(pollers) {
            throw ValidationError("--pollers must be from 1 to 10000.")
        }
        for (name, value, range) in [
            ("--poll-interval", self.pollInterval, 0.0...86_400),
            ("--status-interval", self.statusInterval, 0.001...86_400),
            ("--error-backoff", self.errorBackoff, 0.0...86_400), ("--timeout", self.timeout, 0.001...3_600),
        ] {
            if let value, !(value.isFinite && range.contains(value)) {
                throw ValidationError(
                    "\(name) must be a number of seconds from \(range.lowerBound) to \(range.upperBound).")
            }
        }
    }

    /// The script's settings with the command line's overrides applied.
    func apply(to settings: Settings) -> Settings {
        var settings = settings
        if let pollers { settings.pollers = pollers }
        if let pollInterval { settings.pollInterval = .seconds(pollInterval) }
        if let statusInterval { settings.statusInterval = .seconds(statusInterval) }
        if let errorBackoff { settings.errorBackoff = .seconds(errorBackoff) }
        if let timeout { settings.timeout = .seconds(timeout) }
        return settings
    }

    func fallbackReporter() -> any Reporter {
        switch self.format {
        case .text: TextReporter(output: .standardOutput)
        case .json: JSONReporter(output: .standardOutput)
        }
    }
}

/// Options every command has.
struct CommonOptions: ParsableArguments {
    @Option(help: "Log level for the engine and the script's urlpoll.log: debug, info, warning or error.")
    var logLevel: String = "info"

    @Option(help: ArgumentHelp("The most memory the script's Lua state may hold.", valueName: "MiB"))
    var luaMemory: Int = 64

    @Option(help: ArgumentHelp("Lua instructions one hook call may run before it is stopped.", valueName: "count"))
    var luaInstructions: Int64 = 10_000_000

    func validate() throws {
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("--log-level must be one of debug, info, warning, error.")
        }
        guard (1...65_536).contains(self.luaMemory) else {
            throw ValidationError("--lua-memory must be from 1 to 65536 MiB.")
        }
        guard (1_000...1_000_000_000_000).contains(self.luaInstructions) else {
            throw ValidationError("--lua-instructions must be from 1000 to 10^12.")
        }
    }

    var limits: LuaLimits {
        var limits = LuaLimits()
        limits.memory = self.luaMemory << 20
        limits.hookInstructions = self.luaInstructions
        return limits
    }

    func makeLogger() -> Logger {
        var logger = Logger(label: "urlpoll") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: self.logLevel) ?? .info
        return logger
    }
}

/// Loads a script, or prints its error (`file:line: message`) to standard error and exits with status 2.
func loadScript(
    path: String, text: String? = nil, args: [String], limits: LuaLimits, alerts: (any AlertSink)? = nil,
    metrics: EngineMetrics? = nil, history: (any HistoryStore)? = nil, logger: Logger
) throws -> ScriptHost {
    do {
        return try ScriptHost(
            path: path, text: text, args: args, limits: limits, alerts: alerts, metrics: metrics, history: history,
            logger: logger)
    } catch {
        // The message names the script's file:line; Lua's stack traceback is for --log-level debug.
        Output.standardError("urlpoll: \(error.message)\n")
        if let traceback = error.traceback { logger.debug("\(traceback)") }
        throw ExitCode(2)
    }
}
