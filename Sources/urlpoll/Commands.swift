import ArgumentParser
import AsyncHTTPClient
import Engine
import Logging
import ServiceLifecycle
import UnixSignals
import DemoSite

extension Urlpoll {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Poll the script's URLs until stopped.",
            discussion: """
                Polls forever, reporting every status_interval. SIGINT or SIGTERM stops cleanly: in-flight \
                requests are cancelled, a last report is printed, queued alerts get 5 s, and the exit status \
                is 0. SIGHUP reloads the script: it is validated first, and on error the old one keeps \
                running; kept URLs keep their state. A script that does not load at start exits with status \
                2 and its file:line error, as does a --state file or --data folder another urlpoll is using, or a \
                --data database written by a newer urlpoll, or a --store that cannot be reached or was written by a newer \
                urlpoll. When standard \
                output's reader goes away (`urlpoll run x.lua | head -1`), it stops as on SIGTERM and exits 0.
                """)

        @Argument(help: "The Lua config script.")
        var script: String

        @OptionGroup var poll: PollOptions
        @OptionGroup var common: CommonOptions

        @Option(
            help: ArgumentHelp(
                "Keep each URL's last state in this file and resume from it on start, without re-alerting (one urlpoll per file: FILE.lock is locked).",
                valueName: "file"))
        var state: String?

        @OptionGroup var history: HistoryOptions

        @Flag(help: "Reload when the script file changes, as SIGHUP does.")
        var watch = false

        @Option(
            help: ArgumentHelp(
                "Share the schedule with other instances running the same script, in this PostgreSQL database (overrides `store`): each URL is polled by one instance per interval, each change alerted by one, report runs on one; an instance that dies hands its URLs on within one lease (timeout + 10 s). The password comes from PGPASSWORD or ~/.pgpass, never the URL. Not with --state or --data.",
                valueName: "postgresql://user@host:port/db"))
        var store: String?

        @Option(
            help: ArgumentHelp(
                "Serve /metrics (Prometheus), /probe and /healthz on this address (overrides `listen`).",
                valueName: "host:port"))
        var listen: String?

        @Argument(parsing: .postTerminator, help: "Arguments after -- reach the script as urlpoll.args.")
        var scriptArguments: [String] = []

        func run() async throws {
            let logger = self.common.makeLogger()
            var listen: ListenAddress?
            if let text = self.listen {
                do {
                    listen = try ListenAddress(parsing: text)
                } catch {
                    Output.standardError("urlpoll: --listen: \(error)\n")
                    throw ExitCode(2)
                }
            }
            let session = try Session(
                path: self.script, args: self.scriptArguments, limits: self.common.limits, options: self.poll,
                state: self.state, data: self.history.data, retention: self.history.retention, listen: listen,
                store: self.store,
                logger: logger)
            do {
                try await session.run(watch: self.watch)
            } catch let error as ListenError {
                Output.standardError("urlpoll: \(error)\n")
                throw ExitCode(2)
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load and validate a script, list its URLs and hooks, and poll nothing.",
            discussion: "Exits 0 when the script is valid, 2 (with its file:line error) when it is not.")

        @Argument(help: "The Lua config script.")
        var script: String

        @OptionGroup var common: CommonOptions

        @Argument(parsing: .postTerminator, help: "Arguments after -- reach the script as urlpoll.args.")
        var scriptArguments: [String] = []

        func run() async throws {
            // `urlpoll.history` reads an empty history here: `check` has no --data (`systemctl reload` runs
            // it before a reload), and a script that calls it at its top level is valid for `run --data`.
            let host = try loadScript(
                path: self.script, args: self.scriptArguments, limits: self.common.limits,
                history: EmptyHistoryStore(), logger: self.common.makeLogger())
            Output.standardOutput(describe(host.config))
        }
    }

    struct Once: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Poll every URL once, report once, and exit.",
            discussion: """
                Exits 0 when every URL is up, 1 when any is down, 3 when none is down but a check judged some \
                degraded, and 2 when the script does not load. Alerts raised are delivered before exiting. With \
                --data (or the `data` setting) the polls and changes are kept in the store before exiting, and \
                each URL resumes from it as in `run`: `on_change` fires only for a URL whose status changed since \
                the last run, and `urlpoll.history` reads the runs before this one. --store and a `store` setting \
                are ignored, with a warning: `once` polls every URL itself and does not touch the shared schedule.
                """)

        @Argument(help: "The Lua config script.")
        var script: String

        @OptionGroup var poll: PollOptions
        @OptionGroup var common: CommonOptions
        @OptionGroup var history: HistoryOptions

        @Option(
            help: ArgumentHelp(
                "Ignored, with a warning: `once` polls every URL itself and does not touch the shared schedule (accepted so that `run`'s command line works here).",
                valueName: "postgresql://user@host:port/db"))
        var store: String?

        @Argument(parsing: .postTerminator, help: "Arguments after -- reach the script as urlpoll.args.")
        var scriptArguments: [String] = []

        func run() async throws {
            let logger = self.common.makeLogger()
            if self.store != nil {
                logger.warning(
                    "--store is ignored by `urlpoll once`: it polls every URL here, once, and neither reads nor writes the shared schedule (use `urlpoll run` to share it)"
                )
            }
            let session = try Session(
                path: self.script, args: self.scriptArguments, limits: self.common.limits, options: self.poll,
                data: self.history.data, retention: self.history.retention, sharing: false, logger: logger)
            let states = await session.runOnce()
            if states.contains(where: { $0.health == .down }) { throw ExitCode(1) }
            if states.contains(where: { $0.health == .degraded }) { throw ExitCode(3) }
        }
    }

    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Poll a built-in loopback site to see ticks, backoff and state changes, with no network.",
            discussion: """
                Starts a small web site on 127.0.0.1 (healthy, failing, slow, flapping, missing and redirecting \
                pages) and runs the bundled demo script (scripts/demo.lua) against it until Ctrl-C.
                """)

        @Option(help: "Port for the demo site (0 picks a free one).")
        var port: Int = 0

        @OptionGroup var poll: PollOptions
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let logger = self.common.makeLogger()
            var siteLogger = logger
            siteLogger.logLevel = .warning
            let (ports, portContinuation) = AsyncStream<Int>.makeStream()
            let site = DemoSite.application(port: self.port, logger: siteLogger) { port in
                portContinuation.yield(port)
                portContinuation.finish()
            }
            let poll = self.poll
            let demo = DemoRunner(ports: ports, options: poll, limits: self.common.limits, logger: logger)
            let group = ServiceGroup(
                configuration: .init(
                    services: [
                        .init(service: site, serviceName: "demo-site"), .init(service: demo, serviceName: "demo"),
                    ],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: siteLogger))
            try await group.run()
        }
    }
}

/// Waits for the demo site's port, then polls it with the bundled script.
struct DemoRunner: Service {
    let ports: AsyncStream<Int>
    let options: PollOptions
    let limits: LuaLimits
    let logger: Logger

    func run() async throws {
        guard let port = await self.ports.first(where: { _ in true }) else { return }
        let base = "http://127.0.0.1:\(port)"
        Output.standardOutput("urlpoll demo: polling the demo site at \(base) (Ctrl-C to stop)\n")
        let session = try Session(
            path: "demo.lua", text: DemoSite.script, args: [base], limits: self.limits, options: self.options,
            logger: self.logger)
        try await session.run(signals: [], reloadOnSIGHUP: false)
    }
}
