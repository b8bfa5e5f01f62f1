import Foundation
import PostgresNIO
import Testing

@testable import Engine

/// Issue 15, item 3: `urlpoll run` stopped by SIGTERM during its start (states resumed, the shared schedule
/// prepared), before its services run: it stops cleanly then, as it does once polling (exit status 0, a last
/// report), not by the signal's default action.
@Suite(.timeLimit(.minutes(2))) struct StartSignalCLITests {
    static func script(_ server: RecordingServer) throws -> TemporaryScript {
        try TemporaryScript(
            """
            status_interval = 60
            poll_interval = 0.05
            error_backoff = 0
            urls = { "\(server.url)/svc" }
            """)
    }

    /// Waits (checking every millisecond, at most 30 s) until `process` writes `text` to standard error.
    static func assoonas(_ process: CLIProcess, says text: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !process.stderr.contains(text) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                throw CLIError(message: "no \"\(text)\" in standard error:\n\(process.stderr)")
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    @Test func sigtermAsSoonAsTheStatesAreResumed_stopsCleanly() async throws {
        let server = try RecordingServer.keepAlive()
        let script = try Self.script(server)
        let folder = HistoryCLITests.Folder()
        // Given: a --data store that holds the URL's state (written at the clean stop's last tick).
        let first = try CLIProcess(["run", script.path, "--data", folder.path])
        #expect(await eventually(within: .seconds(20)) { server.requests.count > 0 })
        first.signal(SIGTERM)
        #expect(await first.wait(limit: .seconds(30)) == 0)
        #expect(HistoryCLITests.count(folder, "SELECT count(*) FROM url_state WHERE status IS NOT NULL") == 1)
        // When: urlpoll starts on it again and gets SIGTERM as soon as it says it resumes the state.
        let second = try CLIProcess(["run", script.path, "--data", folder.path])
        defer { second.signal(SIGKILL) }
        try await Self.assoonas(second, says: "resuming 1 URL state")
        second.signal(SIGTERM)
        // Then: it stops cleanly: exit status 0, and the last report shows the state it resumed.
        #expect(await second.wait(limit: .seconds(30)) == 0, "\(second.stderr)")
        #expect(second.stdout.hasSuffix("Current state:\n \(server.url)/svc 200 OK\n"), "\(second.stdout)")
    }

    /// Whether `url`'s database has a session that waits for a lock (`what`: a `LIKE` pattern of its query).
    static func waiting(_ url: String, _ what: String = "%") async -> Int64? {
        try? await TestPostgres.column(
            url,
            """
            SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '\(what)'
                AND datname = current_database()
            """, as: Int64.self
        ).first
    }

    @Test func sigtermWhileTheStartWaitsForTheSchemaLock_stopsCleanly_atOnce() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let location = try PostgresLocation(url, environment: [:])
        let server = try RecordingServer.keepAlive()
        let script = try Self.script(server)
        try await TestPostgres.withConnection(location) { holder in
            // Given: another session holds the schema's lock, so urlpoll's start waits for it (as it waits
            // for another instance's listing).
            for try await _ in try await holder.query(
                "SELECT pg_advisory_lock(\(PostgresStore.migrationLock))", logger: TestPostgres.logger)
            {}
            let process = try CLIProcess(["run", script.path, "--store", url])
            defer { process.signal(SIGKILL) }
            let waiting = await eventually(within: .seconds(20)) { () async -> Bool in
                let count = try? await TestPostgres.column(
                    url,
                    """
                    SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """, as: Int64.self)
                return count == [1]
            }
            try #require(waiting, "\(process.stderr)")
            // When: SIGTERM comes while it waits (the lock still held).
            process.signal(SIGTERM)
            // Then: it stops cleanly at once: exit status 0, no error, and its statement no longer waits for
            // the lock (the schema is not made yet: no instance row was written).
            #expect(await process.wait(limit: .seconds(5)) == 0, "\(process.stderr)")
            #expect(!process.stderr.contains("error"), "\(process.stderr)")
            #expect(await eventually(within: .seconds(5)) { await Self.waiting(url) == 0 })
        }
    }

    /// Issue 15, F1: the start's listing waits for a table lock another session holds (a migration,
    /// `VACUUM FULL`, a DBA's transaction); SIGTERM then stops urlpoll at once, not at the listing's limit.
    @Test func sigtermWhileTheListingWaitsForATableLock_stopsCleanly_atOnce_andLeavesTheSchedule() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let location = try PostgresLocation(url, environment: [:])
        let server = try RecordingServer.keepAlive()
        let script = try Self.script(server)
        // The schema is there (as on any but the first start).
        let store = PostgresStore(location: location, connections: 2, logger: TestPostgres.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            try await store.migrate()
        }
        try await TestPostgres.withConnection(location) { holder in
            // Given: another session holds urlpoll_targets in ACCESS EXCLUSIVE mode, and urlpoll's start
            // waits for it.
            for try await _ in try await holder.query("BEGIN", logger: TestPostgres.logger) {}
            for try await _ in try await holder.query(
                "LOCK TABLE urlpoll_targets IN ACCESS EXCLUSIVE MODE", logger: TestPostgres.logger)
            {}
            let process = try CLIProcess(["run", script.path, "--store", url])
            defer { process.signal(SIGKILL) }
            try #require(
                await eventually(within: .seconds(20)) { await Self.waiting(url) == 1 }, "\(process.stderr)")
            // When: SIGTERM comes while it waits.
            let sent = ContinuousClock.now
            process.signal(SIGTERM)
            // Then: a clean stop at once, the lock still held: exit status 0 within a few seconds (the
            // listing's limit is 12 s), no error, its instance row gone, and its listing no longer waits.
            #expect(await process.wait(limit: .seconds(30)) == 0, "\(process.stderr)")
            #expect(ContinuousClock.now - sent < .seconds(4), "\(ContinuousClock.now - sent)")
            #expect(!process.stderr.contains("error"), "\(process.stderr)")
            #expect(!process.stderr.contains("cannot"), "\(process.stderr)")
            let rows = try await TestPostgres.column(url, "SELECT count(*) FROM urlpoll_instances", as: Int64.self)
            #expect(rows == [0])
            #expect(await eventually(within: .seconds(5)) { await Self.waiting(url) == 0 })
            for try await _ in try await holder.query("ROLLBACK", logger: TestPostgres.logger) {}
        }
    }

    /// The CPU time `pid` has used, from /proc/PID/stat (utime + stime, in clock ticks of 10 ms).
    static func cpuTicks(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command's ")": state is field 3, utime 14 and stime 15 (proc(5)).
        guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }

    /// Issue 15, F4: SIGTERM before the session traps the signals (its script still loading) is a clean
    /// stop, not the signal's default action (exit status 143).
    @Test(arguments: [1, 2]) func sigtermWhileTheScriptLoads_stopsCleanly(_ run: Int) async throws {
        let server = try RecordingServer.keepAlive()
        // A script whose load takes a second or more (a Lua loop within the load's instruction budget).
        let script = try TemporaryScript(
            """
            local x = 0
            for i = 1, 90000000 do x = x + i end
            status_interval = 60
            urls = { "\(server.url)/svc" }
            """)
        let process = try CLIProcess(["run", script.path])
        defer { process.signal(SIGKILL) }
        // When: SIGTERM comes while the script loads (the process has run 0.1 s of it).
        try #require(await eventually(within: .seconds(20)) { (Self.cpuTicks(process.pid) ?? 0) >= 10 })
        process.signal(SIGTERM)
        // Then: a clean stop (exit status 0), not the default action.
        #expect(await process.wait(limit: .seconds(30)) == 0, "\(process.stderr)")
    }
}
