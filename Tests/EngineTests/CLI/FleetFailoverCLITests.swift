import Engine
import Foundation
import Logging
import Testing

/// `urlpoll run --store` processes sharing one schedule on the tests' PostgreSQL, one of them frozen
/// (SIGSTOP) or reloaded (SIGHUP): who runs `report` for the fleet.
@Suite(.serialized) struct FleetFailoverCLITests {
    /// A script reporting every 0.5 s, printing REPORT at the end of each report.
    static func script(_ base: String) throws -> TemporaryScript {
        try TemporaryScript(
            """
            status_interval = 0.5
            poll_interval = 5
            urls = { "\(base)/a", "\(base)/b" }
            function report(s) if s.index == s.count then print("REPORT") end end
            """)
    }

    /// Starts `script` twice on `store`: `a`, once it runs report for the fleet, then `b`, once it shares the
    /// schedule. The caller kills both when done.
    static func leaderAndFollower(_ script: TemporaryScript, store: String) async throws
        -> (a: CLIProcess, b: CLIProcess)
    {
        let a = try CLIProcess(["run", script.path, "--store", store])
        do {
            try await a.waitForStderr("runs report for the fleet", limit: .seconds(30))
            let b = try CLIProcess(["run", script.path, "--store", store])
            do {
                try await b.waitForStderr("sharing the schedule", limit: .seconds(30))
            } catch {
                b.signal(SIGKILL)
                throw error
            }
            return (a, b)
        } catch {
            a.signal(SIGKILL)
            throw error
        }
    }

    static func reports(_ process: CLIProcess) -> Int {
        process.stdout.components(separatedBy: "REPORT").count - 1
    }

    @Test func frozenLeader_isReplacedWithinThreeStatusIntervals_andStopsReportingOnceItThaws() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let server = try RecordingServer.keepAlive()
        let script = try Self.script(server.url)
        // Given: instance a runs report; b runs the same script.
        let (a, b) = try await Self.leaderAndFollower(script, store: url)
        defer {
            a.signal(SIGKILL)
            b.signal(SIGKILL)
        }
        try await a.waitForOutput("REPORT", count: Self.reports(a) + 2, limit: .seconds(10))
        // When: a freezes (its session, and the report lock with it, stays open).
        a.signal(SIGSTOP)
        let frozen = ContinuousClock.now
        // Then: b sees a's heartbeat stand still, ends a's session and reports, within 3 status intervals
        // and the wait for the lock (2 s at most).
        try await b.waitForStderr("took report over from", limit: .seconds(15))
        try await b.waitForOutput("REPORT", limit: .seconds(5))
        #expect(frozen.duration(to: .now) < .seconds(6), "\(b.stderr)")
        // When: a runs again; then it finds its session ended and stops reporting: only b reports.
        let before = Self.reports(a)
        a.signal(SIGCONT)
        try await a.waitForStderr("no longer runs report", limit: .seconds(10))
        try await b.waitForOutput("REPORT", count: Self.reports(b) + 4, limit: .seconds(10))
        #expect(Self.reports(a) == before, "\(a.stdout)")
        // And: a's session ended by another instance is no outage of PostgreSQL.
        #expect(!a.stderr.contains(" error "), "\(a.stderr)")
        #expect(!a.stderr.contains("answers again"), "\(a.stderr)")
        a.signal(SIGTERM)
        b.signal(SIGTERM)
        #expect(await a.wait(limit: .seconds(20)) == 0)
        #expect(await b.wait(limit: .seconds(20)) == 0)
    }

    /// Fault 2 of the new-user test: with the instances under different roles, the others logged every
    /// tick that they "took report over … its session was ended", which PostgreSQL had refused.
    @Test func frozenLeaderOfAnotherRole_isNotClaimedTakenOver_andTheRefusalIsSaidOnce() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let server = try RecordingServer.keepAlive()
        let script = try Self.script(server.url)
        // Given: two roles with the rights a least-privilege setup gives, on a migrated database.
        let location = try PostgresLocation(url, environment: [:])
        let setup = PostgresStore(location: location, connections: 2, instance: "setup", logger: Logger(label: "t"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await setup.run() }
            defer { group.cancelAll() }
            try await setup.migrate()
        }
        let suffix = UInt32.random(in: 0...UInt32.max)
        var stores: [String] = []
        for role in ["fleet_a_\(suffix)", "fleet_b_\(suffix)"] {
            for statement in [
                "CREATE ROLE \(role) LOGIN", "GRANT ALL ON ALL TABLES IN SCHEMA public TO \(role)",
                "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO \(role)",
            ] {
                _ = try await TestPostgres.column(url, statement, as: Int32.self)
            }
            stores.append(
                "postgresql://\(role)@\(location.host):\(location.port)/\(location.database)?sslmode=disable")
        }
        let a = try CLIProcess(["run", script.path, "--store", stores[0]])
        defer { a.signal(SIGKILL) }
        try await a.waitForStderr("runs report for the fleet", limit: .seconds(30))
        let b = try CLIProcess(["run", script.path, "--store", stores[1]])
        defer { b.signal(SIGKILL) }
        try await b.waitForStderr("sharing the schedule", limit: .seconds(30))
        // When: a, the leader, freezes.
        a.signal(SIGSTOP)
        defer { a.signal(SIGCONT) }
        // Then: b says in words why it cannot take report over, and what to do.
        try await b.waitForStderr("cannot take report over from", limit: .seconds(15))
        // And: not again over 8 more status intervals (the absence needs the time to pass), and never that
        // it took report over; nor does it report.
        try await Task.sleep(for: .seconds(4))
        let said = b.stderr.components(separatedBy: "cannot take report over from").count - 1
        #expect(said == 1, "\(b.stderr)")
        #expect(b.stderr.contains("GRANT pg_signal_backend TO fleet_b_\(suffix)"), "\(b.stderr)")
        #expect(!b.stderr.contains("took report over"), "\(b.stderr)")
        #expect(Self.reports(b) == 0, "\(b.stdout)")
    }

    @Test func sighupOnTheLeader_keepsReport_andNoOtherInstanceReports() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let server = try RecordingServer.keepAlive()
        let script = try Self.script(server.url)
        // Given: instance a runs report; b runs the same script.
        let (a, b) = try await Self.leaderAndFollower(script, store: url)
        defer {
            a.signal(SIGKILL)
            b.signal(SIGKILL)
        }
        try await a.waitForOutput("REPORT", count: Self.reports(a) + 2, limit: .seconds(10))
        // When: a reloads its script (SIGHUP), three times.
        for n in 1...3 {
            a.signal(SIGHUP)
            let reloaded = await eventually(within: .seconds(10)) {
                a.stderr.components(separatedBy: "reloaded ").count - 1 == n
            }
            try #require(reloaded, "\(a.stderr)")
            try await a.waitForOutput("REPORT", count: Self.reports(a) + 2, limit: .seconds(10))
        }
        // Then: a kept the report lock through each reload (its session handed to the new pool), so b never
        // reported, and a said nothing of losing it.
        #expect(Self.reports(b) == 0, "\(b.stderr)")
        #expect(!a.stderr.contains("no longer runs report"), "\(a.stderr)")
        #expect(a.stderr.components(separatedBy: "runs report for the fleet").count - 1 == 1, "\(a.stderr)")
        a.signal(SIGTERM)
        b.signal(SIGTERM)
        #expect(await a.wait(limit: .seconds(20)) == 0)
        #expect(await b.wait(limit: .seconds(20)) == 0)
    }

    @Test func aLeaderWhoseReportHookWaits_keepsBeatingItsHeartbeat_andIsNotReplaced() async throws {
        guard let url = try await TestPostgres.database() else { return }
        // Given: a report hook that waits 2 s on a request (4 status intervals) at every tick.
        let server = try RecordingServer { request in
            (request.path == "/slow" ? [.pause(.seconds(2))] : []) + [.ok(request)]
        }
        let script = try TemporaryScript(
            """
            status_interval = 0.5
            poll_interval = 5
            urls = { "\(server.url)/a", "\(server.url)/b" }
            function report(s)
                if s.index == s.count then
                    urlpoll.http.get("\(server.url)/slow")
                    print("REPORT")
                end
            end
            """)
        let (a, b) = try await Self.leaderAndFollower(script, store: url)
        defer {
            a.signal(SIGKILL)
            b.signal(SIGKILL)
        }
        // When: a reports three times, each report waiting past 3 of b's looks at the lock.
        try await a.waitForOutput("REPORT", count: Self.reports(a) + 3, limit: .seconds(20))
        // Then: a's heartbeat went on beside its report, so b never took it for a frozen leader.
        #expect(!b.stderr.contains("took report over"), "\(b.stderr)")
        #expect(!a.stderr.contains("no longer runs report"), "\(a.stderr)")
        a.signal(SIGTERM)
        b.signal(SIGTERM)
        #expect(await a.wait(limit: .seconds(20)) == 0)
        #expect(await b.wait(limit: .seconds(20)) == 0)
    }
}
