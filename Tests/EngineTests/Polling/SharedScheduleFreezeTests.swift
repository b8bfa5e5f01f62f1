import Engine
import Foundation
import Logging
import Synchronization
import Testing

/// The shared schedule when PostgreSQL or an instance freezes (SIGSTOP) and thaws, restarts, or an instance
/// reloads: on a PostgreSQL server of each test's own (TestPostgres.Cluster), which it may stop and freeze.
extension SharedScheduleTests {
    /// A PostgreSQL server of the test's own, stopped at the end; nil (having said why) when there is none.
    static func ownPostgres(_ test: String = #function) async throws -> TestPostgres.Cluster? {
        guard TestPostgres.Cluster.binaries != nil else {
            try #require(
                ProcessInfo.processInfo.environment["CI"] == nil,
                "PostgreSQL is not installed (apt-get install -y postgresql); CI must run this test")
            print("skipping \(test): PostgreSQL is not installed")
            return nil
        }
        return try await TestPostgres.Cluster.start()
    }

    @Test func aClaimGivenUpWhilePostgresIsFrozen_leasesNothing_onceItThaws() async throws {
        guard let postgres = try await Self.ownPostgres() else { return }
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        // Given: 4 URLs polled every 10 s (timeout 5 s: a lease of 15 s) by one instance whose statements
        // are given up after 1 s.
        let server = try RecordingServer.keepAlive()
        let urls = (1...4).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 10), database: postgres.url) {
            cluster in
            let (logger, log) = RecordingLogHandler.make()
            _ = try cluster.start("a", logger: logger, statementTimeout: .seconds(1))
            try await cluster.settle(sleepers: 2)
            for _ in 1...9 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 2)
            }
            #expect(server.requests.count == 4)
            // When: PostgreSQL freezes as the URLs fall due (10 s): the claims sent meanwhile are given up
            // after their limit, and run when the server thaws.
            try await postgres.freeze()
            for _ in 1...3 {
                cluster.clock.advance(by: .seconds(1))
                #expect(
                    await eventually(within: .seconds(5)) {
                        log.all.contains { $0.contains("cannot claim due URLs: no answer within 1 s") }
                    })
                try await Task.sleep(for: .milliseconds(1_200))
            }
            try await postgres.thaw()
            // Then: every URL is polled again within one interval of falling due (by 20 s), not when the
            // leases the given-up claims took end (25 s).
            for _ in 1...7 {
                cluster.clock.advance(by: .seconds(1))
                _ = await eventually(within: .seconds(2)) { server.requests.count == 8 }
            }
            #expect(server.requests.count == 8, "\(log.all)")
            #expect(log.all.contains { $0.contains("leases that a claim given up") }, "\(log.all)")
        }
    }

    @Test func urlsInFlightAtAReload_areWrittenBack_notPolledAgain_andAChangedOneIsPolledAfterIt() async throws {
        // Given: two URLs polled every 60 s (timeout 5 s: a lease of 15 s) on a server that holds each one's
        // first request for 2 s.
        let answered = Mutex<[String: Int]>([:])
        let times = Mutex<[String: [ContinuousClock.Instant]]>([:])
        let server = try RecordingServer { request in
            let n = answered.withLock {
                $0[request.path, default: 0] += 1
                return $0[request.path]!
            }
            times.withLock { $0[request.path, default: []].append(.now) }
            return (n == 1 ? [.pause(.seconds(2))] : []) + [.ok(request)]
        }
        let urls = ["\(server.url)/kept", "\(server.url)/changed"]
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 60)) { cluster in
            let a = try cluster.start("a")
            #expect(await eventually(within: .seconds(5)) { server.requests.count == 2 })
            // When: a reload changes the second URL's definition while both polls are in flight.
            var changed = Target(url: urls[1])
            changed.interval = .seconds(61)
            let b = try await cluster.reload("a", from: a, targets: [Target(url: urls[0]), changed])
            for _ in 1...30 {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(50))
            }
            _ = await eventually(within: .seconds(5)) { server.requests.count >= 3 }
            // Then: both polls in flight were written back by the old pool (their results count), the kept
            // URL is not polled again before its interval, and the changed one is polled once more, for its
            // new definition, after the first poll's answer, not while it was in flight.
            let paths = times.withLock { $0 }
            #expect(a.polls.states.count == 2)
            #expect(paths["/kept"]?.count == 1, "\(paths)")
            #expect(paths["/changed"]?.count == 2, "\(paths)")
            if let changes = paths["/changed"], changes.count == 2 {
                #expect(changes[0].duration(to: changes[1]) >= .seconds(2), "\(changes)")
            }
            #expect(b.polls.states.map(\.url) == [urls[1]])
        }
    }

    /// The seconds an "answers again (after N s …" line says, if any.
    static func outageLengths(_ log: [String]) -> [Double] {
        log.compactMap { line in
            guard let range = line.range(of: "answers again (after ") else { return nil }
            return Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." })
        }
    }

    @Test func aFrozenPostgres_isSaidOnce_andItsLengthCountsFromTheLastStatementAnswered() async throws {
        guard let postgres = try await Self.ownPostgres() else { return }
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        // Given: 8 URLs polled every second by one instance reporting every second, whose statements are
        // given up after 1 s.
        let server = try RecordingServer.keepAlive()
        let urls = (1...8).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(
            urls: urls, settings: Self.settings(interval: 1, statusInterval: 1), database: postgres.url
        ) { cluster in
            let (logger, log) = RecordingLogHandler.make()
            _ = try cluster.start("a", logger: logger, statementTimeout: .seconds(1))
            try await cluster.settle(sleepers: 2)
            for _ in 1...3 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 2)
            }
            // When: PostgreSQL freezes for 4 s (noticed only at a statement's limit), then thaws.
            try await postgres.freeze()
            let frozen = ContinuousClock.now
            while frozen.duration(to: .now) < .seconds(4) {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(250))
            }
            try await postgres.thaw()
            // Then: once it has answered for a while, one line says it answers again, and the time without
            // it counts from the last statement answered before the freeze: at least the 4 s it was frozen.
            let deadline = ContinuousClock.now + .seconds(30)
            while Self.outageLengths(log.all).isEmpty, ContinuousClock.now < deadline {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(200))
            }
            for _ in 1...10 {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(200))
            }
            let lengths = Self.outageLengths(log.all)
            #expect(lengths.count == 1, "\(log.all)")
            #expect(lengths.allSatisfy { $0 >= 4 }, "\(lengths)")
            #expect(log.all.filter { $0.hasPrefix("error: ") }.count == 1, "\(log.all)")
        }
    }

    @Test func aRestartedPostgres_isSaidOnce_oneErrorAndOneAnswersAgain() async throws {
        guard let postgres = try await Self.ownPostgres() else { return }
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        // Given: 40 URLs polled every second by two instances reporting every second: statements in
        // flight on several of each pool's connections when the server goes.
        let server = try RecordingServer.keepAlive()
        let urls = (1...40).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(
            urls: urls, settings: Self.settings(interval: 1, statusInterval: 1), database: postgres.url
        ) { cluster in
            let logs = ["a", "b"].map { _ in RecordingLogHandler.make() }
            for (name, log) in zip(["a", "b"], logs) { _ = try cluster.start(name, logger: log.0) }
            try await cluster.settle(sleepers: 4)
            for _ in 1...3 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 4)
            }
            // When: PostgreSQL restarts, down for about 2 s.
            try await postgres.stopServer()
            let stopped = ContinuousClock.now
            for _ in 1...4 {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(500))
            }
            try await postgres.startServer()
            let down = stopped.duration(to: .now)
            // Then: each instance says it once: one error, one "answers again" with the time from its last
            // statement answered to its first answered again (at least the time the server was down).
            let deadline = ContinuousClock.now + .seconds(30)
            while !logs.allSatisfy({ !Self.outageLengths($0.1.all).isEmpty }), ContinuousClock.now < deadline {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(200))
            }
            for _ in 1...10 {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(200))
            }
            for (_, log) in logs {
                let lengths = Self.outageLengths(log.all)
                #expect(lengths.count == 1, "\(log.all)")
                #expect(lengths.allSatisfy { $0 >= down.seconds - 0.1 }, "\(lengths) \(down)")
                #expect(log.all.filter { $0.hasPrefix("error: ") }.count == 1, "\(log.all)")
            }
        }
    }

    @Test func aRestartedPostgres_isSaidOnce_byAnInstanceReloadedBefore() async throws {
        guard let postgres = try await Self.ownPostgres() else { return }
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        // Given: a and b (report every second); a was reloaded (SIGHUP): its new pool runs on the session
        // the old one left.
        let server = try RecordingServer.keepAlive()
        let urls = (1...4).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(
            urls: urls, settings: Self.settings(interval: 10, statusInterval: 1), database: postgres.url
        ) { cluster in
            let logs = ["a", "b"].map { _ in RecordingLogHandler.make() }
            let a = try cluster.start("a", logger: logs[0].0)
            _ = try cluster.start("b", logger: logs[1].0)
            try await cluster.settle(sleepers: 4)
            cluster.clock.advance(by: .seconds(1))
            try await cluster.settle(sleepers: 4)
            _ = try await cluster.reload("a", from: a, targets: cluster.targets)
            try await cluster.settle(sleepers: 4)
            cluster.clock.advance(by: .seconds(1))
            try await cluster.settle(sleepers: 4)
            // When: PostgreSQL restarts between two ticks (no statement of the instances' own fails).
            try await postgres.stopServer()
            try await Task.sleep(for: .milliseconds(500))
            try await postgres.startServer()
            // Then: each instance says it once: one error, one "answers again".
            let deadline = ContinuousClock.now + .seconds(30)
            while !logs.allSatisfy({ !Self.outageLengths($0.1.all).isEmpty }), ContinuousClock.now < deadline {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(200))
            }
            for (_, log) in logs {
                #expect(Self.outageLengths(log.all).count == 1, "\(log.all)")
                #expect(log.all.filter { $0.hasPrefix("error: ") }.count == 1, "\(log.all)")
            }
        }
    }

    /// Fault 5 of the new-user test: a reload (SIGHUP) while PostgreSQL was away said the failure of its URL
    /// list, and never that the server answered again.
    @Test func aReloadWhilePostgresIsDown_saysTheOutage_andThatItAnswersAgain() async throws {
        guard let postgres = try await Self.ownPostgres() else { return }
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        // Given: a polls 2 URLs every 60 s, its first polls written back.
        let server = try RecordingServer.keepAlive()
        let urls = (1...2).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(
            urls: urls, settings: Self.settings(interval: 60, statusInterval: 1), database: postgres.url
        ) { cluster in
            let (logger, log) = RecordingLogHandler.make()
            let a = try cluster.start("a", logger: logger)
            try await cluster.settle(sleepers: 2)
            let polled = await eventually(within: .seconds(10)) { () -> Bool in server.requests.count >= 2 }
            #expect(polled)
            // When: PostgreSQL is stopped, a reloads, and PostgreSQL starts again.
            try await postgres.stopServer()
            _ = try await cluster.reload("a", from: a, targets: cluster.targets)
            let said: @Sendable (String) -> Bool = { line in
                line.hasPrefix("error: ") && line.contains("cannot list the script's URLs")
            }
            let failed = await eventually(within: .seconds(20)) { () -> Bool in log.all.contains(where: said) }
            #expect(failed, "\(log.all)")
            try await postgres.startServer()
            // Then: it says, once, that the server answers again.
            let deadline = ContinuousClock.now + .seconds(40)
            while Self.outageLengths(log.all).isEmpty, ContinuousClock.now < deadline {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(Self.outageLengths(log.all).count == 1, "\(log.all)")
        }
    }

    /// Issue 15, N4: a reload (SIGHUP) while PostgreSQL was frozen kept an outage record of its own: the
    /// "answers again" line counted from the reload's failure, not from the last statement answered, and the
    /// report ticks that fell due in the freeze were neither said nor counted.
    @Test func aReloadWhilePostgresIsFrozen_joinsTheOutage_andCountsTheTicksMissedInIt() async throws {
        guard let postgres = try await Self.ownPostgres() else { return }
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        // Given: a polls 2 URLs every 60 s and reports every second (it leads), its statements given up after
        // 1 s.
        let server = try RecordingServer.keepAlive()
        let urls = (1...2).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(
            urls: urls, settings: Self.settings(interval: 60, statusInterval: 1), database: postgres.url
        ) { cluster in
            let (logger, log) = RecordingLogHandler.make()
            let a = try cluster.start("a", logger: logger, statementTimeout: .seconds(1))
            try await cluster.settle(sleepers: 2)
            for _ in 1...2 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 2)
            }
            #expect(a.reports.count > 0)
            // When: PostgreSQL freezes, a reloads at once (before any statement meets its limit), and 6 s of
            // ticks fall due before it thaws.
            try await postgres.freeze()
            let frozen = ContinuousClock.now
            let b = try await cluster.reload("a", from: a, targets: cluster.targets)
            let listed = await eventually(within: .seconds(10)) { () -> Bool in
                log.all.contains { $0.contains("cannot list the script's URLs") }
            }
            #expect(listed, "\(log.all)")
            for _ in 1...6 {
                cluster.clock.advance(by: .seconds(1))
                try await Task.sleep(for: .milliseconds(500))
            }
            let length = frozen.duration(to: .now)
            try await postgres.thaw()
            let deadline = ContinuousClock.now + .seconds(30)
            while Self.outageLengths(log.all).isEmpty, ContinuousClock.now < deadline {
                cluster.clock.advance(by: .milliseconds(200))
                try await Task.sleep(for: .milliseconds(100))
            }
            // Then: one outage, said once, whose length counts from the last statement answered before the
            // freeze (not from the reload's failure, 1 s into it) ...
            let lengths = Self.outageLengths(log.all)
            #expect(lengths.count == 1, "\(log.all)")
            #expect(lengths.allSatisfy { $0 >= length.seconds - 0.1 }, "\(lengths) \(length)")
            #expect(log.all.filter { $0.hasPrefix("error: ") }.count == 1, "\(log.all)")
            // ... and the new pool's monitor counts the report ticks that fell due in it.
            let missed = await eventually(within: .seconds(10)) { b.missed.total.withLock { $0 } >= 4 }
            #expect(missed, "\(b.missed.total.withLock { $0 }) \(a.missed.total.withLock { $0 })")
        }
    }

    @Test func leavingWhilePostgresIsDown_saysTheConnectionIsRefused_andWhileFrozen_givesUpAfter2s() async throws {
        guard let postgres = try await Self.ownPostgres() else { return }
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        // Given: an instance whose pool has connected, with its row in the schedule.
        let store = PostgresStore(
            location: try PostgresLocation(postgres.url, environment: [:]), connections: 2, instance: "a",
            logger: Self.logger)
        let running = Task { await store.run() }
        defer { running.cancel() }
        try await store.migrate()
        _ = try await store.beat(scriptHash: "s", alive: 8)
        // When: PostgreSQL is stopped (its port refuses connections) and the instance stops cleanly.
        try await postgres.stopServer()
        do {
            try await store.leave()
            Issue.record("leave worked with the server stopped")
        } catch {
            // Then: it says the true reason, not a time limit.
            #expect(error.description.contains("refused"), "\(error.description)")
            #expect(!error.description.contains("no answer"), "\(error.description)")
        }
        // When: PostgreSQL runs but is frozen.
        try await postgres.startServer()
        try await postgres.freeze()
        do {
            try await store.leave()
            Issue.record("leave worked with the server frozen")
        } catch {
            // Then: it gives up after its own short limit, not the statements' 10 s.
            #expect(error.description.contains("no answer within 2 s"), "\(error.description)")
        }
        try await postgres.thaw()
    }
}
