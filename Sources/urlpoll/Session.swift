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
    /// Held while the session lives, so no second urlpoll writes the same state file.
    private let stateLock: StateFileLock?
    /// The history store (`--data DIR`, else the `data` setting), its writer, and the states it held at start.
    let history: (store: any HistoryStore, path: String, writer: HistoryWriter, saved: [State], lock: StateFileLock)?
    /// The `data` setting as first loaded (`--data` overrides it), to tell a reload that changes it.
    private let dataSetting: String?
    /// The schedule shared with other instances in PostgreSQL (`--store`, else the `store` setting), and the
    /// hash of the script as first loaded.
    let shared: (store: PostgresStore, scriptHash: String)?
    /// What `urlpoll.history`, `/status` and the page read: the `--data` store, or the fleet's history in
    /// the shared schedule (``PostgresHistory``).
    private let readable: (any HistoryStore)?
    /// How long the shared schedule's history is kept (`--keep-*`); a `--data` store's writer has its own.
    private let retention: HistoryWriter.Retention
    /// What `/metrics` says of the shared schedule, when there is one and a listener.
    private let clusterMetrics: ClusterMetrics?
    let dispatcher: AlertDispatcher<ContinuousClock>
    /// Runs each change's `on_change` hook off the poll that heard it, once the change is committed.
    let changes: ChangeQueue<ContinuousClock>
    /// The pool for the script as first loaded, taken by `run` or `runOnce`: once a reload replaces it,
    /// nothing keeps it.
    private let firstPool: Handoff<PollerPool<ContinuousClock>>
    /// Where the HTTP listener listens (`--listen`, else the script's `listen`), or nil for none.
    let listen: ListenAddress?
    /// urlpoll's own metrics, and what the listener serves; recorded only when there is a listener.
    let metrics: EngineMetrics?
    let served = MetricsSource()
    let notifier = SystemdNotifier(environment: ProcessInfo.processInfo.environment)
    private let probeClient: HTTPClient
    private let prober: HTTPProber
    /// The HTTP prober, with the TCP, TLS and DNS probers beside it, chosen by each URL's scheme.
    private let schemes: SchemeProber
    private let alertClient: HTTPClient

    /// Loads the script (exiting with status 2 on error) and builds the engine around it.
    /// - Parameters:
    ///   - listen: `--listen`, which overrides the script's `listen` setting.
    ///   - sharing: Whether the command can share a schedule (`run`); `once` polls every URL itself, and
    ///     says that it ignores a `store` setting.
    init(
        path: String, text: String? = nil, args: [String], limits: LuaLimits, options: PollOptions,
        state: String? = nil, data: String? = nil, retention: HistoryWriter.Retention = .init(),
        listen: ListenAddress? = nil, store: String? = nil, sharing: Bool = true, logger: Logger
    ) throws {
        do {
            self.stateLock = try state.map(StateFileLock.init(statePath:))
        } catch {
            Output.standardError("urlpoll: \(error.description)\n")
            throw ExitCode(2)
        }
        // Metrics are recorded only for a listener; `--listen` is known now, the script's `listen` after
        // loading, so the registry exists from the start and is dropped if nothing will serve it.
        let metrics = EngineMetrics()
        // `--data` is opened before the script loads, so `urlpoll.history` works while it loads; the `data`
        // setting once it has loaded.
        var history = try data.map {
            try Self.openHistory(data: $0, option: "--data", retention: retention, metrics: metrics, logger: logger)
        }
        let alertClient = HTTPProber.makeClient(pollers: 4, followsRedirects: true)
        let dispatcher = AlertDispatcher(
            transport: SystemAlertTransport(client: alertClient), clock: ContinuousClock(), logger: logger,
            observer: metrics)
        let host: ScriptHost
        do {
            host = try loadScript(
                path: path, text: text, args: args, limits: limits, alerts: dispatcher, metrics: metrics,
                history: history?.store, logger: logger)
            if history == nil, let data = host.config.settings.data {
                history = try Self.openHistory(
                    data: data, option: "data", retention: retention, metrics: metrics, logger: logger)
                host.history.connect(history!.store)
            }
        } catch {
            try? alertClient.syncShutdown()
            throw error
        }
        let pollers = options.apply(to: host.config.settings).pollers
        if !sharing, host.config.settings.store != nil {
            logger.warning(
                "the 'store' setting is ignored by `urlpoll once`: it polls every URL here, once, and neither reads nor writes the shared schedule (use `urlpoll run` to share it)"
            )
        }
        do {
            self.shared = try Self.openShared(
                store: sharing ? store ?? host.config.settings.store : nil, host: host, text: text, args: args,
                state: state,
                data: history != nil, pollers: pollers, options: options, logger: logger)
        } catch {
            try? alertClient.syncShutdown()
            throw error
        }
        self.history = history
        self.retention = retention
        if let shared = self.shared {
            let fleet = PostgresHistory(store: shared.store)
            host.history.connect(fleet)
            self.readable = fleet
        } else {
            self.readable = history?.store
        }
        if history == nil, self.shared == nil, retention != HistoryWriter.Retention() {
            logger.warning(
                "--minute-retention and --hour-retention have no effect without --data DIR or --store (or the data or store setting): nothing is kept"
            )
        } else if retention.minutes > retention.hours {
            logger.warning(
                "--minute-retention (\(retention.minutes.seconds / 86_400) days) is longer than --hour-retention (\(retention.hours.seconds / 86_400) days): windows longer than a day read the hour rollups, so the older minutes are kept but not read"
            )
        }
        self.dataSetting = data == nil ? host.config.settings.data : nil
        self.listen = listen ?? host.config.settings.listen
        self.metrics = self.listen != nil ? metrics : nil
        var clusterMetrics: ClusterMetrics?
        if let shared = self.shared, self.listen != nil {
            clusterMetrics = ClusterMetrics(metrics: metrics, instance: shared.store.instance)
        }
        self.clusterMetrics = clusterMetrics
        self.path = path
        self.text = text
        self.args = args
        self.limits = limits
        self.options = options
        self.logger = logger
        self.store = state.map(StateStore.init(path:))
        self.dispatcher = dispatcher
        self.changes = ChangeQueue(clock: ContinuousClock(), logger: logger)
        self.alertClient = alertClient
        self.probeClient = HTTPProber.makeClient(pollers: pollers)
        var configuration = HTTPProber.Configuration()
        configuration.idleConnectionsPerHost = max(configuration.idleConnectionsPerHost, pollers)
        configuration.idleConnections = max(configuration.idleConnections, pollers)
        self.prober = HTTPProber(client: self.probeClient, configuration: configuration)
        if let limit = FileLimit.raise(),
            let warning = FileLimit.warning(
                limit: limit, urls: host.config.targets.count, pollers: pollers,
                idleConnections: configuration.idleConnections)
        {
            logger.warning("\(warning)")
        }
        do {
            self.schemes = try SchemeProber(http: self.prober, group: self.probeClient.eventLoopGroup)
        } catch {
            // The TLS prober reads the system's trusted certificates now. Nothing polls yet: stop the clients
            // started above (AsyncHTTPClient traps in a debug build when a client is dropped running) and
            // say why in words, not the TLS library's error dump.
            self.prober.shutdown()
            try? self.probeClient.syncShutdown()
            try? alertClient.syncShutdown()
            Output.standardError(
                "urlpoll: cannot start: \(FileLimit.trustRootsUnreadable(limit: FileLimit.current()))\n")
            throw ExitCode(2)
        }
        self.firstPool = Handoff(
            Self.makePool(
                host: host, options: options, store: self.store, history: self.history?.writer,
                changes: self.changes, prober: self.schemes, metrics: self.metrics, served: self.served,
                schedule: self.shared.map {
                    SharedSchedule(
                        store: $0.store, scriptHash: $0.scriptHash, syncsOnStart: false, metrics: clusterMetrics)
                },
                logger: logger))
        if host.config.onChange != nil, let store = history?.store as? SQLiteHistoryStore {
            Self.replayUnstartedHooks(store: store, host: host, changes: self.changes, logger: logger)
        }
    }

    /// Queues, before polling, the `on_change` hooks of the changes `store` committed whose hooks never
    /// started (urlpoll was killed between the two): the latest ``ChangeQueue/replayLimit`` of the last
    /// ``ChangeQueue/replayWindow``, each once, with `s.replayed`; one line says how many (and how many
    /// older ones are not alerted). A store that cannot be read replays nothing, and says why.
    private static func replayUnstartedHooks(
        store: SQLiteHistoryStore, host: ScriptHost, changes: ChangeQueue<ContinuousClock>, logger: Logger
    ) {
        let since = Date().timeIntervalSince1970 - ChangeQueue<ContinuousClock>.replayWindow.seconds
        do {
            let taken = try store.takeUnstartedChanges(since: since, limit: ChangeQueue<ContinuousClock>.replayLimit)
            if !taken.changes.isEmpty {
                logger.notice(
                    "replaying \(taken.changes.count.counted("on_change hook")) that urlpoll was stopped before starting (committed changes; s.replayed is true)"
                )
            }
            if taken.skipped > 0 {
                logger.warning(
                    "\(taken.skipped.counted("change")) whose on_change hook never started \(taken.skipped.agreeing("is", "are")) not replayed: older than \(formatSeconds(ChangeQueue<ContinuousClock>.replayWindow.seconds)) s or past the latest \(ChangeQueue<ContinuousClock>.replayLimit)"
                )
            }
            changes.replay(taken.changes, hook: host)
        } catch {
            logger.error("\(error.description): on_change hooks that never started are not replayed; polling goes on")
        }
    }

    /// The shared schedule's store for `store` (a `postgresql://` URL), if any; exits with status 2 when the
    /// URL is not one, or `--state` or `--data` were given too (the shared store keeps both).
    private static func openShared(
        store: String?, host: ScriptHost, text: String?, args: [String], state: String?, data: Bool, pollers: Int,
        options: PollOptions, logger: Logger
    ) throws -> (store: PostgresStore, scriptHash: String)? {
        guard let store else { return nil }
        let location: PostgresLocation
        do {
            location = try PostgresLocation(store, environment: ProcessInfo.processInfo.environment)
            if let warning = location.passwordFileWarning { logger.warning("\(warning)") }
        } catch {
            Output.standardError("urlpoll: --store: \(error.description)\n")
            throw ExitCode(2)
        }
        if state != nil || data {
            Output.standardError(
                "urlpoll: --store keeps each URL's state and history in \(location) for every instance; it does not go with --state or --data\n"
            )
            throw ExitCode(2)
        }
        return (
            PostgresStore(location: location, connections: pollers + 2, logger: logger),
            Self.scriptHash(host: host, text: text, args: args, options: options)
        )
    }

    /// The hash two instances compare to tell whether they run the same script, with the same settings
    /// once the command line's overrides (`options`) are applied
    /// (``SharedSchedule/scriptHash(text:arguments:targets:settings:)``).
    private static func scriptHash(host: ScriptHost, text: String?, args: [String], options: PollOptions) -> String {
        let source =
            text ?? FileManager.default.contents(atPath: host.config.path).map { String(decoding: $0, as: UTF8.self) }
            ?? ""
        return SharedSchedule.scriptHash(
            text: source, arguments: args, targets: host.config.targets,
            settings: options.apply(to: host.config.settings))
    }

    /// Prepares the shared schedule before polling starts: the schema, this instance's heartbeat, and the
    /// script's URLs.
    /// - Throws: ``HistoryError`` in words (the caller says it and exits with status 2).
    private static func prepareShared(
        _ shared: (store: PostgresStore, scriptHash: String), targets: [Target], settings: Settings, logger: Logger
    ) async throws(HistoryError) {
        do {
            // One connection first: it fails at once, in words, where the pool would wait for the server.
            let probe = try await shared.store.connectAlone()
            try? await probe.close()
            try await shared.store.migrate()
            _ = try await shared.store.heartbeat(
                scriptHash: shared.scriptHash, alive: 3 * settings.statusInterval.seconds)
            let previous = try await shared.store.sync(
                SharedSchedule.listings(for: targets, settings: settings), scriptHash: shared.scriptHash)
            if let words = SharedSchedule.takeover(from: previous, scriptHash: shared.scriptHash, store: shared.store) {
                logger.warning("\(words)")
            }
            logger.info(
                "sharing the schedule of \(targets.count.counted("URL")) in \(shared.store.location) as \(shared.store.instance)"
            )
        }
    }

    /// Opens the history store in `data` and makes its writer; on error says why and exits with status 2.
    /// - Parameter option: How the folder was given (`--data`, or the `data` setting), for messages.
    private static func openHistory(
        data: String, option: String, retention: HistoryWriter.Retention, metrics: EngineMetrics, logger: Logger
    ) throws -> (store: any HistoryStore, path: String, writer: HistoryWriter, saved: [State], lock: StateFileLock) {
        let store: any HistoryStore
        let path: String
        let lock: StateFileLock
        let saved: [State]
        do {
            // The folder's lock first: two urlpolls started at once on a new folder would otherwise both
            // create and migrate its database, and one would fail with SQLite's words.
            path = try SQLiteHistoryStore.prepareFolder(data)
            lock = try StateFileLock(statePath: path)
            (store, saved) = try Self.openStore(data: data, option: option, logger: logger)
        } catch let error as HistoryError {
            Output.standardError("urlpoll: \(option): \(error.description)\n")
            throw ExitCode(2)
        } catch let error as StateFileLock.Refused {
            let message =
                error.holder.map {
                    "\(data) is in use by another urlpoll (process \($0)); two instances on one store would mix their histories: give each its own --data folder"
                } ?? error.description
            Output.standardError("urlpoll: \(option): \(message)\n")
            throw ExitCode(2)
        }
        // The states the last stop could not write (another process held the store's lock) are newer.
        let unrecorded = HistoryWriter.unrecordedPath(beside: path)
        let (resumed, taken) = HistoryWriter.merging(saved, unrecordedAt: unrecorded)
        if taken > 0 {
            logger.info(
                "\(taken.counted("URL state")) the last stop could not write \(taken.agreeing("is", "are")) read from \(unrecorded)"
            )
        }
        let lost = HistoryWriter.lossCounter(in: metrics.registry)
        let writer = HistoryWriter(
            store: store, retention: retention, unrecordedPath: unrecorded, onLoss: { lost.increment(by: Int64($0)) },
            logger: logger)
        return (store, path, writer, resumed, lock)
    }

    /// Opens the store in `data` and reads its saved states. On a disk too full to open it (SQLite cannot
    /// make its `-wal` and `-shm` files), a restart polls and alerts as a full disk while running does: the
    /// states are read without writing, one error line says so, and history waits for space
    /// (``UnopenedHistoryStore``).
    private static func openStore(data: String, option: String, logger: Logger) throws(HistoryError) -> (
        any HistoryStore, [State]
    ) {
        let failure: HistoryError
        do {
            let opened = try SQLiteHistoryStore(directory: data)
            return (opened, try opened.savedStates())
        } catch {
            failure = error
        }
        guard SQLiteHistoryStore.diskIsFull(data) else { throw failure }
        let saved = try SQLiteHistoryStore.savedStates(readingOnly: data)
        logger.error(
            "\(option): \(failure.description); urlpoll starts without writing history (\(saved.count.counted("URL state")) read from the file) and writes it again once there is space; polling goes on"
        )
        return (UnopenedHistoryStore(directory: data, saved: saved), saved)
    }

    /// The monitor and pool for a loaded script.
    private static func makePool(
        host: ScriptHost, options: PollOptions, store: StateStore?, history: HistoryWriter?,
        changes: ChangeQueue<ContinuousClock>, prober: SchemeProber, metrics: EngineMetrics?, served: MetricsSource,
        schedule: SharedSchedule? = nil, logger: Logger
    ) -> PollerPool<ContinuousClock> {
        let settings = options.apply(to: host.config.settings)
        host.runs(with: settings)
        var observers: [any StateObserver] = []
        if host.config.onChange != nil {
            // An on_change hook (an alert) runs from the change queue, off the poll that heard the change,
            // once the change is committed: a crash then neither loses its state nor repeats the alert.
            observers.append(changes.observer(hook: host, history: history))
        } else {
            if let history { observers.append(history) }
            if let observer = host.observer { observers.append(observer) }
        }
        if let metrics { observers.append(metrics) }
        switch options.format {
        case .json: observers.append(JSONChangePrinter(output: .standardOutput))
        case .text: if host.config.onChange == nil { observers.append(ChangeLogger(logger: logger)) }
        }
        let monitor = StateMonitor(
            urls: host.config.targets.map(\.url), reporter: host.reporter(fallback: options.fallbackReporter()),
            observers: observers, store: store, onStoreError: { logger.error("\($0)") },
            onLate: { worst in
                let behind = "polls are starting up to \(String(format: "%.1f", worst.seconds)) s behind schedule"
                if changes.holdsPollsBack {
                    logger.warning(
                        "\(behind): polls that bring a change wait for room in the on_change queue (\(changes.capacity) changes wait for their hooks, which are slower than changes come); make on_change faster (a slow webhook?)"
                    )
                } else {
                    logger.warning(
                        "\(behind): the engine cannot keep up with \(host.config.targets.count.counted("URL")) on \(settings.pollers.counted("poller")); add --pollers or lengthen intervals (the failures it reports are still the targets' own)"
                    )
                }
            },
            onReportSkipped: { total in
                metrics?.reportTickSkipped()
                // The first, then one line per 100: the metric counts every one.
                guard total == 1 || total % 100 == 0 else { return }
                logger.warning(
                    "a tick's report was skipped (\(total) so far): the previous tick's report was still under way after status_interval (\(formatSeconds(settings.statusInterval.seconds)) s); a report hook that waits on urlpoll.http should finish within it"
                )
            },
            onTicksMissed: { count, first in
                metrics?.reportTicksMissed(count)
                // Once an episode (ticks late in a row): the metric counts every one.
                guard first else { return }
                logger.warning(
                    "\(count.counted("report tick")) fell due while urlpoll or its store was stopped or frozen; their reports are skipped, not made up, and ticks go on every \(formatSeconds(settings.statusInterval.seconds)) s"
                )
            })
        if let metrics {
            metrics.loaded(urls: host.config.targets.count)
            served.serve(
                monitor: monitor, targets: host.config.targets, settings: settings, modules: host.config.modules)
        }
        return PollerPool(
            settings: settings, targets: host.config.targets, prober: prober,
            policy: host.sleepPolicy, checker: host.checker, monitor: monitor, clock: ContinuousClock(),
            onLocalFailure: { logger.warning("\($0)") }, schedule: schedule)
    }

    /// Loads the script again for a reload; on error says why and returns nil, and the old one runs on.
    private func reload() -> PollerPool<ContinuousClock>? {
        self.notifier.reloading()
        defer { self.notifier.ready() }
        do {
            let host = try ScriptHost(
                path: self.path, text: self.text, args: self.args, limits: self.limits, alerts: self.dispatcher,
                metrics: self.metrics, history: self.readable, logger: self.logger)
            self.logger.info("reloaded \(self.path): \(host.config.targets.count.counted("URL"))")
            if host.config.settings.listen != nil, host.config.settings.listen != self.listen {
                self.logger.warning("the 'listen' setting changed; restart urlpoll to listen elsewhere")
            }
            if self.dataSetting != host.config.settings.data, self.history == nil || self.dataSetting != nil {
                self.logger.warning("the 'data' setting changed; restart urlpoll to keep history there")
            }
            self.metrics?.reloaded(success: true)
            let schedule = self.shared.map {
                SharedSchedule(
                    store: $0.store,
                    scriptHash: Self.scriptHash(host: host, text: self.text, args: self.args, options: self.options),
                    replacesAPool: true, metrics: self.clusterMetrics)
            }
            return Self.makePool(
                host: host, options: self.options, store: self.store, history: self.history?.writer,
                changes: self.changes, prober: self.schemes, metrics: self.metrics, served: self.served,
                schedule: schedule,
                logger: self.logger)
        } catch {
            self.metrics?.reloaded(success: false)
            self.logger.error("reload failed, still running the previous script: \(error.message)")
            return nil
        }
    }

    /// Polls until SIGINT/SIGTERM, reloading on SIGHUP (and, with `watch`, when the script file changes);
    /// then prints a last report and delivers queued alerts.
    ///
    /// `signals` are trapped from the start (one that came while the arguments were parsed or the script
    /// loaded, ``EarlySignals``, counts as come now): one that comes before the services run stops urlpoll
    /// cleanly (exit status 0) all the same. While the shared schedule is prepared (`--store`), it cancels
    /// the start's statements (one waiting for a lock, or for a server that does not answer) and this
    /// instance leaves the schedule (``PostgresStore/leave(within:releasing:)``) at once; while the states
    /// are resumed, the services stop as soon as they have started (a last report, queued alerts delivered).
    func run(signals: [UnixSignal] = [.sigterm, .sigint], reloadOnSIGHUP: Bool = true, watch: Bool = false) async throws
    {
        try await StopRequests.trapping(signals) { stops in
            guard let shared = self.shared else {
                guard let pool = self.firstPool.take() else { return }
                try await self.run(consume pool, stops: stops, reloadOnSIGHUP: reloadOnSIGHUP, watch: watch)
                return
            }
            // The store's connection pool runs for as long as the session.
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await shared.store.run() }
                if let fleet = self.readable as? PostgresHistory {
                    let (retention, logger) = (self.retention, self.logger)
                    group.addTask { await fleet.prune(keeping: retention, logger: logger) }
                }
                try await self.runShared(shared, stops: stops, reloadOnSIGHUP: reloadOnSIGHUP, watch: watch)
                group.cancelAll()
            }
        }
    }

    /// Prepares the shared schedule (exiting with status 2 when it cannot), then polls on it; a stop while
    /// it is prepared cancels that and leaves the schedule (a clean stop).
    private func runShared(
        _ shared: (store: PostgresStore, scriptHash: String), stops: StopRequests?, reloadOnSIGHUP: Bool,
        watch: Bool
    ) async throws {
        guard let pool = self.firstPool.take() else { return }
        let (targets, settings, logger) = (pool.targets, pool.settings, self.logger)
        let preparing = Task {
            try await Self.prepareShared(shared, targets: targets, settings: settings, logger: logger)
        }
        do {
            // A stop cancels the start's statements and is not held up by one that does not heed it.
            try await StopRequests.first(of: preparing, or: stops)
        } catch {
            guard stops?.stopped == true else {
                if let error = error as? HistoryError {
                    Output.standardError("urlpoll: --store: \(error.description)\n")
                }
                await self.shutdown()
                throw error is HistoryError ? ExitCode(2) : error
            }
            // Stopped during the start: nothing was claimed, so there is no lease to release (and a lock
            // on the schedule, what the start may have waited for, would hold the release up).
            await self.leave(shared.store, releasing: false)
            await self.shutdown()
            return
        }
        try await self.run(consume pool, stops: stops, reloadOnSIGHUP: reloadOnSIGHUP, watch: watch)
        // Stopped cleanly (SIGTERM, SIGINT): this instance's row goes, and the URLs it was polling are
        // released for the others to claim at once, not after their leases.
        await self.leave(shared.store, releasing: true)
    }

    /// This instance leaves the shared schedule (``PostgresStore/leave(within:releasing:)``); a failure is
    /// a warning that says when the others take its URLs.
    private func leave(_ store: PostgresStore, releasing: Bool) async {
        do {
            try await store.leave(releasing: releasing)
        } catch {
            self.logger.warning(
                "\(error.description); the other instances take this one's URLs when their leases expire (timeout + \(formatSeconds(SharedSchedule.leaseMargin.seconds)) s)"
            )
        }
    }

    /// Whether `--state FILE`, given with a `--data` store that holds states, was written after the store
    /// (its newest poll is later: a run with `--state` alone in between), and so is what `run` resumes from;
    /// says which one is used and why when both hold states.
    private func stateFileIsNewer(
        than history: (
            store: any HistoryStore, path: String, writer: HistoryWriter, saved: [State], lock: StateFileLock
        ),
        _ targets: [Target]
    ) -> Bool {
        guard let store = self.store, let file = try? StateStore.match(store.load(), to: targets), !file.isEmpty
        else { return false }
        let fileLast = file.map(\.checkedAt).max() ?? 0
        let storeLast = HistoryKey.match(history.saved, to: targets).map(\.checkedAt).max() ?? 0
        let at = { (seconds: Double) in Date(timeIntervalSince1970: seconds.rounded(.down)).formatted(.iso8601) }
        if fileLast > storeLast {
            self.logger.warning(
                "\(store.path) is newer than \(history.path) (its last poll at \(at(fileLast)), the store's at \(at(storeLast))): resuming from the state file"
            )
            return true
        }
        self.logger.info(
            "\(store.path) is not read: \(history.path) holds newer states (its last poll at \(at(storeLast)), the file's at \(at(fileLast)))"
        )
        return false
    }

    /// Polls `pool` until one of `stops` (trapped since the session's start) comes; the services stop
    /// gracefully then, also when it came before they started.
    private func run(
        _ pool: consuming PollerPool<ContinuousClock>, stops: StopRequests?, reloadOnSIGHUP: Bool, watch: Bool
    ) async throws {
        var resume: [State] = []
        if let history = self.history, !history.saved.isEmpty, !self.stateFileIsNewer(than: history, pool.targets) {
            // The store is where `run` resumes from; --state goes on being written beside it.
            resume = HistoryKey.match(history.saved, to: pool.targets)
            self.logger.info(
                "resuming \(resume.count.counted("URL state")) from \(history.path)")
        } else if let store = self.store {
            do {
                resume = StateStore.match(try store.load(), to: pool.targets)
                if !resume.isEmpty {
                    let into = self.history.map { "; written to \($0.path) now" } ?? ""
                    self.logger.info(
                        "resuming \(resume.count.counted("URL state")) from \(store.path)\(into)"
                    )
                }
            } catch {
                self.logger.warning("ignoring the state file: \(error.description)")
            }
            if let history = self.history, !resume.isEmpty {
                // The migration (--state into a new --data store): every state read from the file goes into
                // the store before the first poll, so a URL with no result during this run (a server that
                // hangs past its stop) keeps its state at the next start, which reads the store alone.
                var batch = HistoryBatch()
                for state in resume { batch.states[state.historyKey] = state }
                do {
                    try await history.store.write(batch)
                } catch {
                    self.logger.warning(
                        "the states of \(store.path) could not be written to \(history.path): \(error); they go there as each URL is polled"
                    )
                }
            }
        }
        let (reloads, reloadRequests) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let triggers = ReloadTriggers(
            path: watch ? self.path : nil, sighup: reloadOnSIGHUP, requests: reloadRequests, logger: self.logger)
        let polling = ReloadingService(pool: consume pool, resume: resume, reloads: reloads) { self.reload() }
        // Polling starts once the listener is bound, so a taken address stops urlpoll before its first poll.
        let (bound, boundContinuation) = AsyncStream<Void>.makeStream()
        // Services stop in reverse order: polling first (its last report may raise alerts), then the
        // listener, then alerts.
        // Named: by default ServiceLifecycle names a service by printing it, which for the poller prints
        // every URL (21 MB of text for 100,000 URLs).
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let history = self.history {
            // First, so it stops last: polling's last tick is written.
            services.append(.init(service: history.writer, serviceName: "history"))
        }
        services += [
            .init(service: self.dispatcher, serviceName: "alerts"),
            // After the alerts, so it stops before them: the hooks still queued at a stop raise theirs.
            .init(service: self.changes, serviceName: "on_change"),
            .init(service: triggers, successTerminationBehavior: .ignore, serviceName: "reload-triggers"),
            .init(
                service: StandardOutputWatch(logger: self.logger),
                successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "stdout-watch"),
        ]
        if let listen = self.listen, let metrics = self.metrics {
            let server = MetricsServer(
                address: listen, source: self.served, metrics: metrics, prober: self.schemes,
                history: self.readable, logger: self.logger
            ) { _ in
                boundContinuation.yield()
                boundContinuation.finish()
            }
            services.append(.init(service: server, serviceName: "listener"))
        } else {
            boundContinuation.finish()
        }
        services.append(
            .init(
                service: StartAfter(signal: bound, notifier: self.notifier, service: polling), serviceName: "polling"))
        // No signals of the group's own: the stop requests trapped since the start ask it to stop, and one
        // that came before it runs stops it as soon as it has started (ServiceGroup keeps the request).
        let group = ServiceGroup(configuration: .init(services: services, logger: self.logger))
        stops?.onStop { Task { await group.triggerGracefulShutdown() } }
        do {
            try await group.run()
        } catch {
            await self.store?.flush()
            await self.shutdown()
            throw error
        }
        await self.store?.flush()
        await self.shutdown()
    }

    /// Polls every URL once, reports once, delivers the alerts raised, and returns the states.
    /// With a history store, resumes from it (as ``run(signals:reloadOnSIGHUP:watch:)`` does: error counts
    /// and `since` go on) and writes the polls and changes there before the report (so `urlpoll.history`
    /// there counts this run's polls) and before returning.
    func runOnce() async -> [State] {
        async let delivering: Void = self.dispatcher.run()
        async let hooking: Void = self.changes.run()
        guard let pool = self.firstPool.take() else {
            self.changes.finish()
            await hooking
            return []
        }
        var writing: Task<Void, Never>?
        var resume: [State] = []
        if let history = self.history {
            if !history.saved.isEmpty {
                resume = HistoryKey.match(history.saved, to: pool.targets)
                self.logger.info(
                    "resuming \(resume.count.counted("URL state")) from \(history.path)")
                await pool.monitor.seed(resume)
            }
            let writer = history.writer
            writing = Task { await writer.run() }
        }
        // Each URL's error_count and since go on from the store, as under `run`.
        let states = await pool.runOnce(resuming: resume)
        // This run's polls are written before the report, so urlpoll.history in `report` always counts them;
        // and its on_change hooks run before it, as their changes are committed.
        self.changes.finish(limited: false)
        await self.history?.writer.sync()
        await hooking
        await pool.monitor.tick()
        if let history = self.history {
            history.writer.finish()
            await writing?.value
        }
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

/// StartAfter runs `service` once `signal` ends (the listener is bound, or there is none), telling the
/// service manager READY=1 then, and STOPPING=1 on graceful shutdown. Cancelled before then, it runs
/// nothing.
struct StartAfter<S: Service>: Service {
    let signal: AsyncStream<Void>
    let notifier: SystemdNotifier
    let service: S

    func run() async throws {
        for await _ in self.signal {}
        guard !Task.isCancelled else { return }
        self.notifier.ready()
        try await withGracefulShutdownHandler {
            try await self.service.run()
        } onGracefulShutdown: {
            self.notifier.stopping()
        }
    }
}

/// StandardOutputWatch returns when standard output's reader has gone (a write failed with EPIPE), which
/// stops the group as SIGTERM does, so `urlpoll run x.lua | head -1` ends (exit status 0) the way Unix
/// filters do.
struct StandardOutputWatch: Service {
    let logger: Logger

    func run() async {
        await cancelWhenGracefulShutdown {
            await StandardOutput.shared.waitUntilClosed()
        }
        if StandardOutput.shared.isClosed {
            self.logger.debug("standard output was closed by its reader: stopping")
        }
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
