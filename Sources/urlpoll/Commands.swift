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
                requests are cancelled, a last report is printed, and the exit status is 0. A script that \
                does not load exits with status 2 and its file:line error.
                """)

        @Argument(help: "The Lua config script.")
        var script: String

        @OptionGroup var poll: PollOptions
        @OptionGroup var common: CommonOptions

        @Argument(parsing: .postTerminator, help: "Arguments after -- reach the script as urlpoll.args.")
        var scriptArguments: [String] = []

        func run() async throws {
            let logger = self.common.makeLogger()
            let host = try loadScript(path: self.script, args: self.scriptArguments, logger: logger)
            try await runPolling(host: host, options: self.poll, logger: logger)
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
            let host = try loadScript(path: self.script, args: self.scriptArguments, logger: self.common.makeLogger())
            Output.standardOutput(describe(host.config))
        }
    }

    struct Once: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Poll every URL once, report once, and exit.",
            discussion: "Exits 0 when every URL is up, 1 when any failed, 2 when the script does not load.")

        @Argument(help: "The Lua config script.")
        var script: String

        @OptionGroup var poll: PollOptions
        @OptionGroup var common: CommonOptions

        @Argument(parsing: .postTerminator, help: "Arguments after -- reach the script as urlpoll.args.")
        var scriptArguments: [String] = []

        func run() async throws {
            let logger = self.common.makeLogger()
            let host = try loadScript(path: self.script, args: self.scriptArguments, logger: logger)
            let settings = self.poll.apply(to: host.config.settings)
            let client = HTTPProber.makeClient(pollers: settings.pollers)
            let monitor = StateMonitor(
                urls: host.config.targets.map(\.url), reporter: host.reporter(fallback: self.poll.fallbackReporter()))
            let pool = PollerPool(
                settings: settings, targets: host.config.targets, prober: HTTPProber(client: client),
                policy: host.sleepPolicy, monitor: monitor, clock: ContinuousClock())
            let states = await pool.runOnce()
            await monitor.tick()
            try await client.shutdown()
            if states.contains(where: { !$0.ok }) { throw ExitCode(1) }
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
            let demo = DemoRunner(ports: ports, options: poll, logger: logger)
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: site), .init(service: demo)],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: siteLogger))
            try await group.run()
        }
    }
}

/// Waits for the demo site's port, then polls it with the bundled script.
struct DemoRunner: Service {
    let ports: AsyncStream<Int>
    let options: PollOptions
    let logger: Logger

    func run() async throws {
        guard let port = await self.ports.first(where: { _ in true }) else { return }
        let base = "http://127.0.0.1:\(port)"
        Output.standardOutput("urlpoll demo: polling the demo site at \(base) (Ctrl-C to stop)\n")
        let host = try loadScript(path: "demo.lua", text: DemoSite.script, args: [base], logger: self.logger)
        try await runPolling(host: host, options: self.options, logger: self.logger, signals: [])
    }
}

/// Runs the poller pool under a service group that stops on SIGINT/SIGTERM and prints a last report.
func runPolling(
    host: ScriptHost, options: PollOptions, logger: Logger, signals: [UnixSignal] = [.sigterm, .sigint]
) async throws {
    let settings = options.apply(to: host.config.settings)
    let client = HTTPProber.makeClient(pollers: settings.pollers)
    let monitor = StateMonitor(
        urls: host.config.targets.map(\.url), reporter: host.reporter(fallback: options.fallbackReporter()))
    let pool = PollerPool(
        settings: settings, targets: host.config.targets, prober: HTTPProber(client: client),
        policy: host.sleepPolicy, monitor: monitor, clock: ContinuousClock())
    let group = ServiceGroup(
        configuration: .init(
            services: [.init(service: PollingService(pool: pool))], gracefulShutdownSignals: signals,
            logger: logger))
    do {
        try await group.run()
    } catch {
        try? await client.shutdown()
        throw error
    }
    try await client.shutdown()
}
