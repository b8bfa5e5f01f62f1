import AsyncHTTPClient
import Engine
import Foundation
import Logging
import Synchronization
import Testing

/// Several instances sharing one schedule in a real PostgreSQL (TestPostgres), polling a real loopback
/// server with the real HTTP prober. Time is the tests' ManualClock, shared by the instances and passed to
/// the database as "now", so what is due when is exact; the waits for polls and writes are bounded.
@Suite(.serialized) struct SharedScheduleTests {
    static let logger = Logger(label: "tests") { _ in SwiftLogNoOpLogHandler() }
    /// The manual clock's zero, in seconds since the epoch.
    static let base = 2_000_000_000.0

    /// One instance: its store, pool, and what its monitor heard.
    struct Instance: Sendable {
        let store: PostgresStore
        let pool: PollerPool<ManualClock>
        let polls: StateRecorder
        let changes: ChangeRecorder
        let reports: CountingReporter
        /// The report ticks missed so far during freezes (`onTicksMissed`, added up).
        let missed: SkipCount
        /// The hash of the script it runs, and where it says what `/metrics` shows (a reload keeps both).
        let script: String
        let metrics: ClusterMetrics?
        /// Its URLs' definition hashes, which a real script's hash covers.
        var definitions: [String] = []
    }

    /// The ticks an instance's `onTicksMissed` was told of, added up.
    final class SkipCount: Sendable {
        let total = Mutex(0)
    }

    /// The instances of one test: one database, one clock.
    final class Cluster: Sendable {
        let url: String
        let clock = ManualClock()
        let settings: Settings
        let targets: [Target]
        let client: HTTPClient
        let prober: HTTPProber
        /// Each instance's store (its connection pool) and schedule pool, running.
        private let running = Mutex<[String: (store: Task<Void, Never>, pool: Task<Void, Never>)]>([:])
        /// What every instance started (and every reload's pool) heard of the polls whose write counted.
        private let recorders = Mutex<[StateRecorder]>([])
        /// Ends an instance's polling without cancelling it: a clean stop (``stop(_:)``).
        private let stopping = Mutex<[String: AsyncStream<Void>.Continuation]>([:])

        init(url: String, settings: Settings, targets: [Target]) {
            self.url = url
            self.settings = settings
            self.targets = targets
            self.client = HTTPProber.makeClient(pollers: 8)
            self.prober = HTTPProber(client: self.client)
        }

        /// Starts instance `name` (`maximumInFlight` polls in flight at most); `reloaded`: as a reload's pool.
        /// - Parameters:
        ///   - script: The hash of the script it runs, and its URLs (by default the cluster's).
        ///   - metrics: Where it says what `/metrics` and `/healthz` show of the schedule.
        func start(
            _ name: String, maximumInFlight: Int = 100, logger: Logger = SharedScheduleTests.logger,
            reloaded: Bool = false, script: String = "script", targets: [Target]? = nil,
            metrics: ClusterMetrics? = nil, statementTimeout: Duration = PostgresStore.defaultStatementTimeout
        ) throws -> Instance {
            let targets = targets ?? self.targets
            let location = try PostgresLocation(self.url, environment: [:])
            let store = PostgresStore(
                location: location, connections: 4, instance: name, statementTimeout: statementTimeout, logger: logger)
            let instance = self.pool(
                on: store, targets: targets, maximumInFlight: maximumInFlight, reloaded: reloaded, script: script,
                metrics: metrics)
            let storeTask = Task { await store.run() }
            let poolTask = self.run(instance.pool, on: store, migrating: true, name: name)
            self.running.withLock { $0[name] = (storeTask, poolTask) }
            return instance
        }

        /// Runs `pool` as the session does: polling until stopped (``stop(_:)``), then, on a clean stop only,
        /// `leave`. A kill cancels polling and the store's pool at once.
        private func run(_ pool: PollerPool<ManualClock>, on store: PostgresStore, migrating: Bool, name: String)
            -> Task<Void, Never>
        {
            let (stops, stop) = AsyncStream<Void>.makeStream()
            self.stopping.withLock { $0[name] = stop }
            return Task {
                if migrating {
                    do {
                        try await store.migrate()
                    } catch {
                        Issue.record("\(error)")
                        return
                    }
                }
                await withTaskGroup(of: Void.self) { polling in
                    polling.addTask { await pool.run() }
                    polling.addTask { for await _ in stops {} }
                    await polling.next()
                    polling.cancelAll()
                }
                if !Task.isCancelled {
                    do { try await store.leave() } catch { Issue.record("\(error)") }
                }
            }
        }

        /// Replaces instance `name`'s pool (`instance`) by one for `targets` on the same store, as a reload
        /// does (SIGHUP): the old pool stops, then the new one lists its URLs and runs.
        func reload(_ name: String, from instance: Instance, targets: [Target]) async throws -> Instance {
            let store = instance.store
            let old = try #require(self.running.withLock { $0[name] })
            instance.pool.replacing()
            old.pool.cancel()
            await old.pool.value
            // A real script's hash covers its URLs' definitions (``SharedSchedule/scriptHash``): a reload
            // that changes one loads another script, whose listing the schedule then compares row by row.
            let definitions = targets.map(\.definitionHash)
            let script =
                definitions == instance.definitions || instance.definitions.isEmpty
                ? instance.script : "\(instance.script)+\(definitions.joined(separator: ",").hashValue)"
            let instance = self.pool(
                on: store, targets: targets, maximumInFlight: 100, reloaded: true, script: script,
                metrics: instance.metrics)
            let poolTask = self.run(instance.pool, on: store, migrating: false, name: name)
            self.running.withLock { $0[name] = (old.store, poolTask) }
            return instance
        }

        private func pool(
            on store: PostgresStore, targets: [Target], maximumInFlight: Int, reloaded: Bool, script: String,
            metrics: ClusterMetrics?
        ) -> Instance {
            let polls = StateRecorder()
            self.recorders.withLock { $0.append(polls) }
            let changes = ChangeRecorder()
            let reports = CountingReporter()
            let missed = SkipCount()
            let monitor = StateMonitor(
                urls: targets.map(\.url), reporter: reports, observers: [polls, changes],
                onTicksMissed: { count, _ in missed.total.withLock { $0 += count } })
            let clock = self.clock
            let schedule = SharedSchedule(
                store: store, scriptHash: script,
                databaseTime: { SharedScheduleTests.base + clock.now.offset.seconds }, replacesAPool: reloaded,
                metrics: metrics)
            let pool = PollerPool(
                settings: self.settings, targets: targets, prober: self.prober, policy: LinearBackoff(),
                monitor: monitor, clock: clock, now: { SharedScheduleTests.base + clock.now.offset.seconds },
                maximumInFlight: maximumInFlight, schedule: schedule)
            return Instance(
                store: store, pool: pool, polls: polls, changes: changes, reports: reports, missed: missed,
                script: script, metrics: metrics, definitions: targets.map(\.definitionHash))
        }

        /// Stops instance `name` as a kill would: its connections close, its polls in flight are dropped,
        /// nothing is written back and no lease is released.
        func kill(_ name: String) async {
            guard let tasks = self.running.withLock({ $0.removeValue(forKey: name) }) else { return }
            tasks.pool.cancel()
            tasks.store.cancel()
            await tasks.pool.value
            await tasks.store.value
        }

        /// Stops instance `name` cleanly, as SIGTERM does: its polling ends, then it leaves the schedule
        /// (``PostgresStore/leave(within:releasing:)``).
        func stop(_ name: String) async {
            let tasks = self.running.withLock { $0.removeValue(forKey: name) }
            self.stopping.withLock { $0.removeValue(forKey: name) }?.finish()
            await tasks?.pool.value
            tasks?.store.cancel()
            await tasks?.store.value
        }

        func stopAll() async throws {
            for name in self.running.withLock({ Array($0.keys) }) { await self.kill(name) }
            self.prober.shutdown()
            try await self.client.shutdown()
        }

        /// Rows leased now.
        func leased() async throws -> Int64 {
            try await TestPostgres.column(
                self.url, "SELECT count(*) FROM urlpoll_targets WHERE lease_owner IS NOT NULL", as: Int64.self
            ).first ?? 0
        }

        /// The polls written back whose write counted (each row's `polls`, added up), and those the instances'
        /// monitors have told their observers of so far: the writer tells them after its write.
        func pollsWrittenAndHeard() async throws -> (written: Int64, heard: Int64) {
            let written =
                try await TestPostgres.column(
                    self.url, "SELECT coalesce(sum(polls), 0)::bigint FROM urlpoll_targets", as: Int64.self
                ).first ?? 0
            let heard = self.recorders.withLock { $0.reduce(0) { $0 + Int64($1.states.count) } }
            return (written, heard)
        }

        /// Waits (at most 10 s) until every instance sleeps (`sleepers` sleeps on the clock), no row is
        /// leased, and every poll written back has been heard by its instance's observers: every poll due so
        /// far has been made, written back and told.
        func settle(sleepers: Int) async throws {
            let deadline = ContinuousClock.now + .seconds(10)
            var polls: (written: Int64, heard: Int64) = (0, 0)
            while ContinuousClock.now < deadline {
                if self.clock.pendingSleeps == sleepers, try await self.leased() == 0 {
                    polls = try await self.pollsWrittenAndHeard()
                    guard polls.written == polls.heard else {
                        try await Task.sleep(for: .milliseconds(10))
                        continue
                    }
                    // Still so a moment later: nothing was between a claim and its sleep.
                    try await Task.sleep(for: .milliseconds(20))
                    polls = try await self.pollsWrittenAndHeard()
                    if self.clock.pendingSleeps == sleepers, try await self.leased() == 0,
                        polls.written == polls.heard
                    {
                        return
                    }
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            Issue.record(
                "the instances did not settle within 10 s (sleeping: \(self.clock.pendingSleeps); polls written back \(polls.written), heard \(polls.heard))"
            )
        }
    }

    static func withCluster(
        urls: [String], settings: Settings, database: String? = nil, test: String = #function,
        _ body: (Cluster) async throws -> Void
    ) async throws {
        var url = database
        if url == nil { url = try await TestPostgres.database(test) }
        guard let url else { return }
        let cluster = Cluster(url: url, settings: settings, targets: urls.map { Target(url: $0) })
        do {
            try await body(cluster)
        } catch {
            try await cluster.stopAll()
            throw error
        }
        try await cluster.stopAll()
    }

    static func settings(interval: Double, statusInterval: Double = 1_000_000) -> Settings {
        var settings = Settings()
        settings.pollInterval = .seconds(interval)
        settings.errorBackoff = .zero
        settings.timeout = .seconds(5)
        settings.statusInterval = .seconds(statusInterval)
        return settings
    }

    @Test func threeInstances_pollEveryURLOncePerInterval_acrossTheCluster() async throws {
        // Given: 12 URLs polled every 10 s by 3 instances, each with room for 4 polls in flight.
        let server = try RecordingServer.keepAlive()
        let urls = (1...12).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 10)) { cluster in
            let instances = try ["a", "b", "c"].map { try cluster.start($0, maximumInFlight: 4) }
            // When: 39 s pass, a second at a time.
            try await cluster.settle(sleepers: 6)
            for _ in 1...39 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 6)
            }
            // Then: each URL was polled at 0, 10, 20 and 30 s: 4 times, not 4 per instance.
            let byPath = Dictionary(grouping: server.requests, by: \.path).mapValues(\.count)
            #expect(byPath.count == 12)
            #expect(byPath.values.allSatisfy { $0 == 4 }, "\(byPath)")
            // Every instance took part, and together they made each poll once.
            let counts = instances.map { $0.polls.states.count }
            #expect(counts.allSatisfy { $0 > 0 }, "\(counts)")
            #expect(counts.reduce(0, +) == 48)
            // Each URL's first result is its one change, alerted by one instance.
            #expect(instances.map { $0.changes.count }.reduce(0, +) == 12)
        }
    }

    @Test func flappingURL_eachTransitionIsAlertedOnce_byOneInstance() async throws {
        // Given: a URL that answers 200 and 500 in turn, polled every 2 s by 3 instances.
        let served = Mutex(0)
        let server = try RecordingServer { request in
            let n = served.withLock {
                $0 += 1
                return $0
            }
            return [.ok(request, status: n % 2 == 1 ? "200 OK" : "500 Internal Server Error")]
        }
        try await Self.withCluster(urls: ["\(server.url)/flap"], settings: Self.settings(interval: 2)) { cluster in
            let instances = try ["a", "b", "c"].map { try cluster.start($0) }
            try await cluster.settle(sleepers: 6)
            for _ in 1...20 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 6)
            }
            // Then: every poll was a transition, each in the change log once and alerted (on_change's
            // observers) by exactly one instance.
            let polls = server.requests.count
            #expect(polls == 11)
            let alerted = instances.flatMap { $0.changes.changes }
            #expect(alerted.count == polls)
            let logged = try await TestPostgres.column(
                cluster.url, "SELECT to_status FROM urlpoll_changes ORDER BY version", as: String.self)
            #expect(logged.count == polls)
            #expect(alerted.sorted { $0.checkedAt < $1.checkedAt }.map(\.status) == logged)
        }
    }

    @Test func instanceKilledMidPoll_itsURLsMoveWithinOneLease_andNothingIsAlertedTwice() async throws {
        // Given: 6 URLs (timeout 5 s: a lease of 15 s) on a server that holds the first 6 requests for 4 s.
        let served = Mutex(0)
        let server = try RecordingServer { request in
            let n = served.withLock {
                $0 += 1
                return $0
            }
            return (n <= 6 ? [.pause(.seconds(4))] : []) + [.ok(request)]
        }
        let urls = (1...6).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 60)) { cluster in
            // Instance a claims all six; their polls are in flight when it is killed.
            let a = try cluster.start("a")
            #expect(await eventually(within: .seconds(5)) { server.requests.count == 6 })
            await cluster.kill("a")
            #expect(try await cluster.leased() == 6)
            // b and c start; the rows stay a's until its leases expire at 15 s.
            let others = try ["b", "c"].map { try cluster.start($0) }
            for _ in 1...15 {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(30))
                #expect(server.requests.count == 6)
            }
            // Within the next wake-up (1 s), b and c take them over and poll each once.
            cluster.clock.advance(by: .seconds(1))
            try await cluster.settle(sleepers: 4)
            #expect(server.requests.count == 12)
            #expect(a.polls.states.isEmpty)
            #expect(others.map { $0.polls.states.count }.reduce(0, +) == 6)
            #expect(others.map { $0.changes.count }.reduce(0, +) == 6)
            // Their lateness counts from when a's leases expired (15 s), not from when they were due (0 s):
            // the wait for a lease is not the engine falling behind.
            let lateness = others.flatMap { $0.polls.states.map(\.lateness) }
            #expect(lateness.allSatisfy { $0 <= SharedSchedule.wakeInterval }, "\(lateness)")
            let changes = try await TestPostgres.column(
                cluster.url, "SELECT count(*) FROM urlpoll_changes", as: Int64.self)
            #expect(changes == [6])
        }
    }
}

extension SharedScheduleTests {
    @Test func postgresRestartedMidRun_pollingResumes_andNoTransitionIsLostOrAlertedTwice() async throws {
        guard TestPostgres.Cluster.binaries != nil else {
            try #require(
                ProcessInfo.processInfo.environment["CI"] == nil,
                "PostgreSQL is not installed (apt-get install -y postgresql); CI must run this test")
            print("skipping postgresRestartedMidRun: PostgreSQL is not installed")
            return
        }
        // Given: a server of this test's own, and a URL that answers 200 and 500 in turn, polled every 2 s
        // by 2 instances.
        let postgres = try await TestPostgres.Cluster.start()
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        let served = Mutex(0)
        let server = try RecordingServer { request in
            let n = served.withLock {
                $0 += 1
                return $0
            }
            return [.ok(request, status: n % 2 == 1 ? "200 OK" : "500 Internal Server Error")]
        }
        try await Self.withCluster(
            urls: ["\(server.url)/flap"], settings: Self.settings(interval: 2), database: postgres.url
        ) { cluster in
            let instances = try ["a", "b"].map { try cluster.start($0) }
            try await cluster.settle(sleepers: 4)
            for _ in 1...4 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 4)
            }
            // When: PostgreSQL stops for 10 s of the schedule's time, then starts again.
            try await postgres.stopServer()
            for _ in 1...10 {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(50))
            }
            try await postgres.startServer()
            // Then: polling resumes (the instances reconnect with backoff, at most 5 s apart).
            let before = server.requests.count
            for _ in 1...12 {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(100))
            }
            try await cluster.settle(sleepers: 4)
            #expect(server.requests.count > before)
            // Every transition written is alerted once, and every poll's result was written: none lost.
            let logged = try await TestPostgres.column(
                cluster.url, "SELECT to_status FROM urlpoll_changes ORDER BY version", as: String.self)
            let alerted = instances.flatMap { $0.changes.changes }
            #expect(alerted.count == logged.count)
            #expect(alerted.sorted { $0.checkedAt < $1.checkedAt }.map(\.status) == logged)
            #expect(logged.count == server.requests.count)
        }
    }
}

extension SharedScheduleTests {
    @Test func report_runsOnOneInstance_overTheFleet_andMovesWithinOneStatusIntervalWhenItDies() async throws {
        // Given: 4 URLs, reported every 5 s, on 3 instances that each poll at most 2 at a time.
        let server = try RecordingServer.keepAlive()
        let urls = (1...4).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 60, statusInterval: 5)) { cluster in
            let names = ["a", "b", "c"]
            let instances = try names.map { try cluster.start($0, maximumInFlight: 2) }
            try await cluster.settle(sleepers: 6)
            for _ in 1...10 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 6)
            }
            // Then: one instance reported (at 5 and 10 s), every URL, polled by whichever instance.
            let reporting = instances.indices.filter { instances[$0].reports.count > 0 }
            #expect(reporting.count == 1)
            let leader = try #require(reporting.first)
            #expect(instances[leader].reports.count == 2)
            #expect(instances[leader].reports.last == 4)
            #expect(instances[leader].polls.states.count < 4)
            // When: the leader dies; then another takes report over at the next tick (within 5 s).
            await cluster.kill(names[leader])
            for _ in 1...5 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 4)
            }
            let next = instances.indices.filter { $0 != leader && instances[$0].reports.count > 0 }
            #expect(next.count == 1)
            #expect(next.first.map { instances[$0].reports.last } == 4)
        }
    }
}

extension SharedScheduleTests {
    /// Waits for `task` at most `limit`; false when it had not ended by then.
    static func ends(_ task: Task<Void, Never>, within limit: Duration) async -> Bool {
        // Not a task group: a group waits for all its children, and the one awaiting `task` may never end.
        final class Once: Sendable {
            let continuation = Mutex<CheckedContinuation<Bool, Never>?>(nil)
            func resume(_ value: Bool) { self.continuation.withLock { $0.take() }?.resume(returning: value) }
        }
        let once = Once()
        return await withCheckedContinuation { continuation in
            once.continuation.withLock { $0 = continuation }
            Task {
                await task.value
                once.resume(true)
            }
            Task {
                try? await Task.sleep(for: limit)
                once.resume(false)
            }
        }
    }

    @Test func postgresRestarted_reportMovesOrResumes_andEveryInstanceStillStops() async throws {
        guard TestPostgres.Cluster.binaries != nil else {
            try #require(
                ProcessInfo.processInfo.environment["CI"] == nil,
                "PostgreSQL is not installed (apt-get install -y postgresql); CI must run this test")
            print("skipping postgresRestarted_report: PostgreSQL is not installed")
            return
        }
        // Given: a server of this test's own, 2 URLs, 2 instances, report every 1 s.
        let postgres = try await TestPostgres.Cluster.start()
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        let server = try RecordingServer.keepAlive()
        let urls = (1...2).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(
            urls: urls, settings: Self.settings(interval: 2, statusInterval: 1), database: postgres.url
        ) { cluster in
            let logs = ["a", "b"].map { _ in RecordingLogHandler.make() }
            let metrics = ["a", "b"].map { _ in EngineMetrics() }
            let instances = try zip(["a", "b"], zip(logs, metrics)).map {
                try cluster.start($0, logger: $1.0.0, metrics: ClusterMetrics(metrics: $1.1, instance: $0))
            }
            try await cluster.settle(sleepers: 4)
            for _ in 1...3 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 4)
            }
            #expect(instances.map(\.reports.count).reduce(0, +) > 0)
            // When: PostgreSQL restarts (its sessions, the leader's advisory lock among them, die).
            try await postgres.stopServer()
            // Then: each instance says so once, in words, within a second (its report lock's connection
            // closed), not at the next statement's time limit.
            for (_, log) in logs {
                #expect(
                    await eventually(within: .seconds(5)) {
                        log.all.contains { $0.hasPrefix("error: ") && $0.contains("the server closed the connection") }
                    }, "\(log.all)")
            }
            // And /healthz says it (503) while the server is away.
            for metrics in metrics {
                let health = metrics.health(expected: 0, polled: 0)
                #expect(health?.contains("does not answer") == true, "\(health ?? "ok")")
            }
            for _ in 1...3 {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(100))
            }
            try await postgres.startServer()
            // Then: at the next tick (one status interval), one instance reports again, on a new session.
            let before = instances.map(\.reports.count).reduce(0, +)
            cluster.clock.advance(by: .seconds(1))
            #expect(
                await eventually(within: .seconds(8)) { instances.map(\.reports.count).reduce(0, +) > before },
                "no instance reported at the first tick after the restart")
            // And once polls are written again, each says once that it answers again; no other error.
            let answered = { (log: RecordingLogHandler.Box) in
                log.all.contains { $0.hasPrefix("notice: ") && $0.contains("answers again") }
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while !logs.allSatisfy({ answered($0.1) }), ContinuousClock.now < deadline {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(200))
            }
            for (_, log) in logs {
                #expect(answered(log), "\(log.all)")
                #expect(log.all.filter { $0.hasPrefix("error: ") }.count == 1, "\(log.all)")
                #expect(log.all.filter { $0.contains("answers again") }.count == 1, "\(log.all)")
            }
            #expect(metrics.allSatisfy { $0.health(expected: 0, polled: 0) == nil })
            // And: every instance stops when told to (within 15 s), as SIGTERM asks.
            for name in ["a", "b"] {
                let task = Task { await cluster.kill(name) }
                #expect(await Self.ends(task, within: .seconds(15)), "instance \(name) did not stop")
            }
        }
    }
}

extension SharedScheduleTests {
    @Test func aReloadsPool_isNoGap_itsOverdueRowsAreLateness_andNotSaidAsAStart() async throws {
        // Given: 4 URLs polled every 10 s by instance a, which stops; its reload's pool takes over 60 s on
        // (a reload that long: the rows fell due while the old pool was still meant to poll them).
        let server = try RecordingServer.keepAlive()
        let urls = (1...4).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 10)) { cluster in
            _ = try cluster.start("a")
            try await cluster.settle(sleepers: 2)
            #expect(server.requests.count == 4)
            await cluster.kill("a")
            cluster.clock.advance(by: .seconds(60))
            // When: the reload's pool starts and claims the 4 rows, each 50 s overdue.
            let (logger, log) = RecordingLogHandler.make()
            let b = try cluster.start("a2", logger: logger, reloaded: true)
            try await cluster.settle(sleepers: 2)
            cluster.clock.advance(by: .seconds(1))
            try await cluster.settle(sleepers: 2)
            // Then: a reload is no gap: nothing is said about an instance start, and the wait counts as
            // lateness.
            #expect(b.polls.states.count == 4)
            #expect(!log.all.contains { $0.contains("were overdue after") }, "\(log.all)")
            #expect(b.polls.states.allSatisfy { $0.lateness > .zero }, "\(b.polls.states.map(\.lateness))")
        }
    }

    @Test func rowsOverdueAfterAGap_areNotLateness_andAreSaidInWords() async throws {
        // Given: 4 URLs polled every 10 s by instance a, which stops; no instance runs for 60 s.
        let server = try RecordingServer.keepAlive()
        let urls = (1...4).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 10)) { cluster in
            _ = try cluster.start("a")
            try await cluster.settle(sleepers: 2)
            #expect(server.requests.count == 4)
            await cluster.kill("a")
            cluster.clock.advance(by: .seconds(60))
            // When: instance b starts and claims the 4 rows, each 50 s overdue.
            let (logger, log) = RecordingLogHandler.make()
            let b = try cluster.start("b", logger: logger)
            try await cluster.settle(sleepers: 2)
            cluster.clock.advance(by: .seconds(1))
            try await cluster.settle(sleepers: 2)
            // Then: their wait is not lateness (no "cannot keep up", /healthz stays 200), and b says what
            // happened instead.
            #expect(b.polls.states.count == 4)
            #expect(b.polls.states.allSatisfy { $0.lateness == .zero }, "\(b.polls.states.map(\.lateness))")
            #expect(
                log.all.contains { $0.hasPrefix("notice: 4 URLs were overdue after this instance started") },
                "\(log.all)")
            // And: the next round, on time, counts lateness as usual (0 here: the manual clock stands still).
            for _ in 1...10 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 2)
            }
            #expect(b.polls.states.count == 8)
            #expect(log.all.filter { $0.contains("were overdue") }.count == 1, "\(log.all)")
        }
    }
}

extension SharedScheduleTests {
    @Test func stoppingWithALeaderStatementInFlight_saysNoOutage_andNoChangeOfLeader() async throws {
        // Given: one instance that leads, reporting every 5 s; a transaction of the test's own holds the
        // instances' table, so the leader's next heartbeat waits.
        let server = try RecordingServer.keepAlive()
        let urls = (1...2).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 60, statusInterval: 5)) { cluster in
            let (logger, log) = RecordingLogHandler.make()
            _ = try cluster.start("a", logger: logger)
            try await cluster.settle(sleepers: 2)
            for _ in 1...5 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 2)
            }
            #expect(log.all.contains { $0.contains("runs report for the fleet") }, "\(log.all)")
            let location = try PostgresLocation(cluster.url, environment: ProcessInfo.processInfo.environment)
            try await TestPostgres.withConnection(location) { holder in
                _ = try await holder.query("BEGIN", logger: TestPostgres.logger)
                _ = try await holder.query(
                    "LOCK TABLE urlpoll_instances IN ACCESS EXCLUSIVE MODE", logger: TestPostgres.logger)
                cluster.clock.advance(by: .seconds(5))
                // The heartbeat waits on the lock (at most 10 s to see it).
                let deadline = ContinuousClock.now + .seconds(10)
                var waiting: Int64 = 0
                while waiting == 0, ContinuousClock.now < deadline {
                    waiting =
                        try await TestPostgres.column(
                            cluster.url,
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
                            as: Int64.self
                        ).first ?? 0
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(waiting > 0)
                // When: the instance is stopped with its heartbeat in flight.
                await cluster.kill("a")
                _ = try await holder.query("ROLLBACK", logger: TestPostgres.logger)
            }
            // Then: its own closing of its leader connection is no outage, and it did not stop leading
            // before stopping.
            #expect(!log.all.contains { $0.contains("closed the connection") }, "\(log.all)")
            #expect(!log.all.contains { $0.contains("no longer runs report") }, "\(log.all)")
            #expect(!log.all.contains { $0.hasPrefix("error: ") }, "\(log.all)")
        }
    }
}

extension SharedScheduleTests {
    @Test func reportTicksMissedDuringAFreeze_areSkipped_notRunInABurst() async throws {
        // Given: one instance that leads, reporting every second.
        let server = try RecordingServer.keepAlive()
        let urls = (1...2).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 60, statusInterval: 1)) { cluster in
            let a = try cluster.start("a")
            try await cluster.settle(sleepers: 2)
            for _ in 1...3 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 2)
            }
            let before = a.reports.count
            #expect(before >= 1)
            // When: 13 s pass at once (the process, or its PostgreSQL, was stopped).
            cluster.clock.advance(by: .seconds(13))
            try await cluster.settle(sleepers: 2)
            // Then: one report, the 12 missed ticks counted as skipped; the next tick is on time.
            #expect(a.reports.count == before + 1)
            #expect(a.missed.total.withLock { $0 } == 12)
            cluster.clock.advance(by: .seconds(1))
            try await cluster.settle(sleepers: 2)
            #expect(a.reports.count == before + 2)
        }
    }
}
