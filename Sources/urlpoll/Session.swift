import ArgumentParser
import AsyncHTTPClient
import Engine
import FoundationEssentials
import Logging
import ServiceLifecycle
import UnixSignals

/// Session is everything one polling command runs: the script host and its pool (rebuilt on reload), the
/// HTTP clients (one for polls, one for alerts, so alerts never take a poll's connection) and the alert
/// dispatcher.
struct Session {
    let path: String
    let text: String?
    let args: [String]
    let limits: LuaLimits
    let options: PollOptions
    let logger: Logger
    let store: StateStore?
    let dispatcher: AlertDispatcher<ContinuousClock>
    /// The pool for the script as first loaded.
    let pool: PollerPool<ContinuousClock>
    private let probeClient: HTTPClient
    private let prober: HTTPProber
    /// The HTTP prober, with the TCP, TLS and DNS probers beside it, chosen by each URL's scheme.
    private let schemes: SchemeProber
    private let alertClient: HTTPClient

    /// Loads the script (exiting with status 2 on error) and builds the engine around it.
    init(
        path: String, text: String? = nil, args: [String], limits: LuaLimits, options: PollOptions,
        state: String? = nil, logger: Logger
    ) throws {
        let alertClient = HTTPProber.makeClient(pollers: 4)
        let dispatcher = AlertDispatcher(
            transport: SystemAlertTransport(client: alertClient), clock: ContinuousClock(), logger: logger)
        let host: ScriptHost
        do {
            host = try loadScript(
                path: path, text: text, args: args, limits: limits, alerts: dispatcher, logger: logger)
        } catch {
            try? alertClient.syncShutdown()
            throw error
        }
        self.path = path
        self.text = text
        self.args = args
        self.limits = limits
        self.options = options
        self.logger = logger
        self.store = state.map(StateStore.init(path:))
        self.dispatcher = dispatcher
        self.alertClient = alertClient
        let pollers = options.apply(to: host.config.settings).pollers
        self.probeClient = HTTPProber.makeClient(pollers: pollers)
        var configuration = HTTPProber.Configuration()
        configuration.idleConnectionsPerHost = max(configuration.idleConnectionsPerHost, pollers)
        configuration.idleConnections = max(configuration.idleConnections, pollers)
        self.prober = HTTPProber(client: self.probeClient, configuration: configuration)
        self.schemes = try SchemeProber(http: self.prober, group: self.probeClient.eventLoopGroup)
        self.pool = Self.makePool(
            host: host, options: options, store: self.store, prober: self.schemes, logger: logger)
    }

    /// The monitor and pool for a loaded script.
    private static func makePool(
        host: ScriptHost, options: PollOptions, store: StateStore?, prober: SchemeProber, logger: Logger
    ) -> PollerPool<ContinuousClock> {
        let settings = options.apply(to: host.config.settings)
        var observers: [any StateObserver] = []
        if let observer = host.observer { observers.append(observer) }
        switch options.format {
        case .json: observers.append(JSONChangePrinter(output: .standardOutput))
        case .text: if host.config.onChange == nil { observers.append(ChangeLogger(logger: logger)) }
        }
        let monitor = StateMonitor(
            urls: host.config.targets.map(\.url), reporter: host.reporter(fallback: options.fallbackReporter()),
            observers: observers, store: store, onStoreError: { logger.error("\($0)") },
            onLate: { worst in
                logger.warning(
                    "polls are starting up to \(String(format: "%.1f", worst.seconds)) s behind schedule: the engine cannot keep up with \(host.config.targets.count) URLs on \(settings.pollers) pollers; add --pollers or lengthen intervals (the failures it reports are still the targets' own)"
                )
            })
        return PollerPool(
            settings: settings, targets: host.config.targets, prober: prober,
            policy: host.sleepPolicy, checker: host.checker, monitor: monitor, clock: ContinuousClock())
    }

    /// Loads the script again for a reload; on error says why and returns nil, and the old one runs on.
    private func reload() -> PollerPool<ContinuousClock>? {
        do {
            let host = try ScriptHost(
                path: self.path, text: self.text, args: self.args, limits: self.limits, alerts: self.dispatcher,
                logger: self.logger)
            self.logger.info("reloaded \(self.path): \(host.config.targets.count) URLs")
            return Self.makePool(
                host: host, options: self.options, store: self.store, prober: self.schemes, logger: self.logger)
        } catch {
            self.logger.error("reload failed, still running the previous script: \(error.message)")
            return nil
        }
    }

    /// Polls until SIGINT/SIGTERM, reloading on SIGHUP (and, with `watch`, when the script file changes);
    /// then prints a last report and delivers queued alerts.
    func run(signals: [UnixSignal] = [.sigterm, .sigint], reloadOnSIGHUP: Bool = true, watch: Bool = false) async throws
    {
        var resume: [State] = []
        if let store = self.store {
            do {
                resume = try store.load()
                if !resume.isEmpty { self.logger.info("resuming \(resume.count) URL states from \(store.path)") }
            } catch {
                self.logger.warning("ignoring the state file: \(error.description)")
            }
        }
        let (reloads, reloadRequests) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let triggers = ReloadTriggers(
            path: watch ? self.path : nil, sighup: reloadOnSIGHUP, requests: reloadRequests, logger: self.logger)
        let polling = ReloadingService(pool: self.pool, resume: resume, reloads: reloads) { self.reload() }
        // Services stop in reverse order: polling first (its last report may raise alerts), then alerts.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    // Named: by default ServiceLifecycle names a service by printing it, which for the
                    // poller prints every URL (21 MB of text for 100,000 URLs).
                    .init(service: self.dispatcher, serviceName: "alerts"),
                    .init(service: triggers, successTerminationBehavior: .ignore, serviceName: "reload-triggers"),
                    .init(service: polling, serviceName: "polling"),
                ],
                gracefulShutdownSignals: signals, logger: self.logger))
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
        await self.pool.monitor.tick()
        self.dispatcher.finish()
        await delivering
        await self.shutdown()
        return states
    }

    private func shutdown() async {
        self.prober.shutdown()
        try? await self.probeClient.shutdown()
        try? await self.alertClient.shutdown()
    }
}

/// ReloadTriggers asks for a reload on SIGHUP and, when watching, when the script file changes (checked
/// every second; the file is followed through symlinks, so an atomic symlink swap counts).
struct ReloadTriggers: Service {
    let path: String?
    let sighup: Bool
    let requests: AsyncStream<Void>.Continuation
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                if self.sighup {
                    group.addTask {
                        for await _ in await UnixSignalsSequence(trapping: .sighup) {
                            self.logger.info("SIGHUP: reloading")
                            self.requests.yield()
                        }
                    }
                }
                if let path = self.path {
                    group.addTask {
                        var last = Self.fingerprint(path)
                        while (try? await Task.sleep(for: .seconds(1))) != nil {
                            let now = Self.fingerprint(path)
                            if now != last, now != nil {
                                self.logger.info("\(path) changed: reloading")
                                self.requests.yield()
                            }
                            last = now ?? last
                        }
                    }
                }
            }
        }
    }

    /// What identifies a version of the file: its modification time, size and inode.
    static func fingerprint(_ path: String) -> [Int]? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let size = (attributes[.size] as? Int) ?? 0
        let inode = (attributes[.systemFileNumber] as? Int) ?? 0
        return [Int(modified * 1000), size, inode]
    }
}
