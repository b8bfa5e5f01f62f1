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

    @Test func sigtermWhileTheSharedScheduleIsPrepared_stopsCleanly_onceItIsReady() async throws {
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
            // When: SIGTERM comes while it waits.
            process.signal(SIGTERM)
            try await Task.sleep(for: .milliseconds(500))
            #expect(process.isRunning, "ended by the signal before its start was done: \(process.stderr)")
            for try await _ in try await holder.query("SELECT pg_advisory_unlock_all()", logger: TestPostgres.logger) {}
            // Then: once its start is done, it stops cleanly: exit status 0, and its row left the instances
            // table (a clean stop's leave). (No last report: report runs on the instance that holds the report
            // lock, which this one never took.)
            #expect(await process.wait(limit: .seconds(30)) == 0, "\(process.stderr)")
            #expect(!process.stderr.contains("error"), "\(process.stderr)")
            let rows = try await TestPostgres.column(url, "SELECT count(*) FROM urlpoll_instances", as: Int64.self)
            #expect(rows == [0])
        }
    }
}
