import ArgumentParser
import AsyncHTTPClient
import Engine
import Logging
import ServiceLifecycle
import UnixSignals

/// Session is everything one polling command runs: the script host, the HTTP clients (one for polls, one
/// for alerts, so alerts never take a poll's connection), the alert dispatcher, the monitor and the pool.
struct Session {
    let host: ScriptHost
    let settings: Settings
    let monitor: StateMonitor
    let pool: PollerPool<ContinuousClock>
    let dispatcher: AlertDispatcher<ContinuousClock>
    private let probeClient: HTTPClient
    private let alertClient: HTTPClient

    /// Loads the script (exiting with status 2 on error) and builds the engine around it.
    init(path: String, text: String? = nil, args: [String], options: PollOptions, logger: Logger) throws {
        let alertClient = HTTPProber.makeClient(pollers: 4)
        let dispatcher = AlertDispatcher(
            transport: SystemAlertTransport(client: alertClient), clock: ContinuousClock(), logger: logger)
        let host: ScriptHost
        do {
            host = try loadScript(path: path, text: text, args: args, alerts: dispatcher, logger: logger)
        } catch {
            try? alertClient.syncShutdown()
            throw error
        }
        let settings = options.apply(to: host.config.settings)
        let probeClient = HTTPProber.makeClient(pollers: settings.pollers)
        var observers: [any StateObserver] = []
        if let observer = host.observer { observers.append(observer) }
        switch options.format {
        case .json: observers.append(JSONChangePrinter(output: .standardOutput))
        case .text: if host.config.onChange == nil { observers.append(ChangeLogger(logger: logger)) }
        }
        let monitor = StateMonitor(
            urls: host.config.targets.map(\.url), reporter: host.reporter(fallback: options.fallbackReporter()),
            observers: observers)
        self.host = host
        self.settings = settings
        self.monitor = monitor
        self.dispatcher = dispatcher
        self.probeClient = probeClient
        self.alertClient = alertClient
        self.pool = PollerPool(
            settings: settings, targets: host.config.targets, prober: HTTPProber(client: probeClient),
            policy: host.sleepPolicy, checker: host.checker, monitor: monitor, clock: ContinuousClock())
    }

    /// Polls until SIGINT/SIGTERM (or `signals`), then prints a last report and delivers queued alerts.
    func run(signals: [UnixSignal] = [.sigterm, .sigint], logger: Logger) async throws {
        // Services stop in reverse order: polling first (its last report may raise alerts), then alerts.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: self.dispatcher), .init(service: PollingService(pool: self.pool))],
                gracefulShutdownSignals: signals, logger: logger))
        do {
            try await group.run()
        } catch {
            await self.shutdown()
            throw error
        }
        await self.shutdown()
    }

    /// Polls every URL once, reports once, delivers the alerts raised, and returns the states.
    func runOnce() async -> [State] {
        async let delivering: Void = self.dispatcher.run()
        let states = await self.pool.runOnce()
        await self.monitor.tick()
        self.dispatcher.finish()
        await delivering
        await self.shutdown()
        return states
    }

    private func shutdown() async {
        try? await self.probeClient.shutdown()
        try? await self.alertClient.shutdown()
    }
}
