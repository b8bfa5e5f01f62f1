import Engine
import Foundation
import GRDB
import Synchronization
import Testing

/// `urlpoll run --data DIR` as a child process: killed with SIGKILL and restarted, a newer store refused,
/// a folder another urlpoll holds refused.
@Suite(.timeLimit(.minutes(2))) struct HistoryCLITests {
    final class Folder: Sendable {
        let path: String
        private let owned: Bool
        init() {
            self.path = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
            self.owned = true
        }
        private init(path: String) {
            self.path = path
            self.owned = false
        }
        /// The folder at `path`, left in place.
        static func at(_ path: String) -> Folder { Folder(path: path) }
        deinit { if self.owned { try? FileManager.default.removeItem(atPath: self.path) } }
    }

    static func count(_ folder: Folder, _ sql: String) -> Int {
        guard let queue = try? DatabaseQueue(path: folder.path + "/urlpoll.sqlite") else { return -1 }
        return (try? queue.read { db in try Int.fetchOne(db, sql: sql) }) ?? -1
    }

    @Test func killedAndRestarted_resumesFromTheStore_withoutRefiringOnChange_orDuplicatingChanges() async throws {
        try await withDemoSite { (base) async throws in
            let folder = Folder()
            let script = try TemporaryScript(
                """
                status_interval = 0.1
                poll_interval = 0.05
                error_backoff = 0
                urls = { "\(base)/healthy", "\(base)/failing" }
                function on_change(s, prev) print("CHANGE " .. s.url .. " " .. s.status) end
                function report(s) if s.index == s.count then print("REPORT") end end
                """)
            // Given: a first run whose two first results (up, down) reached the store, then SIGKILL.
            let first = try CLIProcess(["run", script.path, "--data", folder.path])
            try await first.waitForOutput("REPORT", count: 2)
            let written = await eventually(within: .seconds(20)) {
                Self.count(folder, "SELECT count(*) FROM state_change") == 2
                    && Self.count(folder, "SELECT count(*) FROM url_state WHERE status IS NOT NULL") == 2
            }
            #expect(written, "the first results were not written: \(first.stderr)")
            first.signal(SIGKILL)
            _ = await first.wait()
            #expect(first.stdout.components(separatedBy: "CHANGE").count - 1 == 2)
            let polls = Self.count(folder, "SELECT sum(polls) FROM rollup_hour")

            // When: it starts again on the same folder and ticks a few times.
            let second = try CLIProcess(["run", script.path, "--data", folder.path])
            try await second.waitForOutput("REPORT", count: 4)
            second.signal(SIGTERM)
            #expect(await second.wait() == 0)

            // Then: it said where it resumed from, announced no change, logged no second change, and went on
            // counting polls.
            #expect(second.stderr.contains("resuming 2 URL states from \(folder.path)/urlpoll.sqlite"))
            #expect(!second.stdout.contains("CHANGE"))
            #expect(Self.count(folder, "SELECT count(*) FROM state_change") == 2)
            #expect(Self.count(folder, "SELECT sum(polls) FROM rollup_hour") > polls)
        }
    }

    /// A service whose status the test sets, and a script that prints each `on_change` (an alert) with the
    /// state it leaves, with no tick for a minute: what the store holds after a SIGKILL is what changes
    /// committed, not what a tick wrote.
    final class Flip: Sendable {
        final class Line: Sendable {
            let value = Mutex("200 OK")
        }
        let line = Line()
        let server: RecordingServer
        let script: TemporaryScript

        /// Answers `status` (`"500 Internal Server Error"`) from now on.
        func answer(_ status: String) { self.line.value.withLock { $0 = status } }

        init() throws {
            let line = self.line
            self.server = try RecordingServer { request in [.ok(request, body: "", status: line.value.withLock { $0 })]
            }
            self.script = try TemporaryScript(
                """
                status_interval = 60
                poll_interval = 0.05
                error_backoff = 0
                urls = { "http://127.0.0.1:\(self.server.port)/svc" }
                function on_change(s, prev) print("ALERT " .. (prev and prev.status or "nil") .. " -> " .. s.status) end
                """)
        }
    }

    /// Issue 14 (#1): `on_change` ran as soon as the monitor saw a change, but the change reached the store
    /// only at the next tick; a SIGKILL in between restarted from the older state, so the service's
    /// recovery was never alerted (an incident stuck open at the receiver). A change is now committed
    /// before its hooks run.
    @Test func killedRightAfterAnAlert_restartAlertsTheRecovery() async throws {
        let flip = try Flip()
        let folder = Folder()
        let first = try CLIProcess(["run", flip.script.path, "--data", folder.path])
        try await first.waitForOutput("ALERT nil -> 200 OK")
        // Given: the service fails, its alert is printed, and urlpoll is killed right then.
        flip.answer("500 Internal Server Error")
        try await first.waitForOutput("ALERT 200 OK -> 500 Internal Server Error")
        first.signal(SIGKILL)
        _ = await first.wait()

        // When: the service is back, and urlpoll restarts.
        flip.answer("200 OK")
        let second = try CLIProcess(["run", flip.script.path, "--data", folder.path])
        defer { second.signal(SIGKILL) }
        // Then: the recovery is alerted, from the state the alert left.
        try await second.waitForOutput("ALERT 500 Internal Server Error -> 200 OK", limit: .seconds(20))
        #expect(!second.stdout.contains("ALERT nil"), "\(second.stdout)")
    }

    /// Issue 14 (N0): `on_change` runs from a queue off the polls; a clean stop still runs the hooks of the
    /// changes heard (for 5 s), not abandoning one that waits on `urlpoll.http`, and the writer, which stops
    /// after the queue, still commits what they wait for.
    @Test func sigtermWhileAnOnChangeWaitsOnARequest_runsItBeforeExiting() async throws {
        let server = HookServer()
        try await server.run { base in
            let folder = Folder()
            let script = try TemporaryScript(
                """
                status_interval = 60
                poll_interval = 60
                urls = { "\(base)/json" }
                function on_change(s, prev)
                  local r = urlpoll.http.get("\(base)/slow")
                  print("HOOKED " .. r.body)
                end
                """)
            let process = try CLIProcess(["run", script.path, "--data", folder.path])
            defer { process.signal(SIGKILL) }
            // Given: the first result's on_change waits on a server that has not answered yet.
            var arrivals = server.arrivals.makeAsyncIterator()
            #expect(await arrivals.next() == "/slow")
            // When: urlpoll is stopped; once polling has stopped (its last report is out), the server answers.
            process.signal(SIGTERM)
            try await process.waitForOutput("/json", limit: .seconds(20))
            server.release()
            // Then: the hook finished before urlpoll exited, cleanly.
            #expect(await process.wait() == 0)
            #expect(process.stdout.contains("HOOKED finally"), "\(process.stdout)\n\(process.stderr)")
            #expect(Self.count(folder, "SELECT count(*) FROM state_change") == 1)
        }
    }

    /// Issue 14 (#1): the same window made the restart send the same alert again when the service was still
    /// down.
    @Test func killedRightAfterAnAlert_restartDoesNotRepeatIt() async throws {
        let flip = try Flip()
        let folder = Folder()
        let first = try CLIProcess(["run", flip.script.path, "--data", folder.path])
        try await first.waitForOutput("ALERT nil -> 200 OK")
        flip.answer("500 Internal Server Error")
        try await first.waitForOutput("ALERT 200 OK -> 500 Internal Server Error")
        first.signal(SIGKILL)
        _ = await first.wait()

        // When: urlpoll restarts while the service is still down, and polls it a while.
        let second = try CLIProcess(["run", flip.script.path, "--data", folder.path])
        let before = flip.server.requests.count
        try await second.waitForStderr("resuming 1 URL")
        let polled = await eventually(within: .seconds(20)) { flip.server.requests.count >= before + 20 }
        second.signal(SIGTERM)
        #expect(await second.wait() == 0)
        // Then: no alert: the state it resumed is the one alerted.
        #expect(polled)
        #expect(!second.stdout.contains("ALERT"), "\(second.stdout)")
        #expect(Self.count(folder, "SELECT count(*) FROM state_change") == 2)
    }

    /// Issue 14 (N1): a change committed, and urlpoll killed before its `on_change` hook started, was never
    /// alerted: the restart resumed the committed state and saw no change (a recovery never alerted, an
    /// incident stuck at the receiver). The restart now runs that hook, once, with `s.replayed`; a hook that
    /// had started (here the first, which was waiting on a request) is not run again, nor is the replayed
    /// one after a second kill.
    @Test func killedBetweenACommitAndItsHook_restartReplaysTheHookOnce() async throws {
        let flip = try Flip()
        let server = HookServer()
        try await server.run { base in
            let folder = Folder()
            // The first result's hook waits on /slow, so the next change of the URL, committed, waits behind
            // it in the URL's order: the window between a commit and its hook, held open.
            let script = try TemporaryScript(
                """
                status_interval = 60
                poll_interval = 0.05
                error_backoff = 0
                urls = { "http://127.0.0.1:\(flip.server.port)/svc" }
                function on_change(s, prev)
                  print("ALERT " .. (prev and prev.status or "nil") .. " -> " .. s.status
                    .. (s.replayed and " replayed" or ""))
                  if prev == nil then urlpoll.http.get("\(base)/slow") end
                end
                """)
            let first = try CLIProcess(["run", script.path, "--data", folder.path])
            defer { first.signal(SIGKILL) }
            var arrivals = server.arrivals.makeAsyncIterator()
            #expect(await arrivals.next() == "/slow")
            // Given: the service fails; the change is committed, its hook not started; then SIGKILL.
            flip.answer("500 Internal Server Error")
            let committed = await eventually(within: .seconds(20)) {
                Self.count(folder, "SELECT count(*) FROM state_change") == 2
            }
            #expect(committed, "\(first.stderr)")
            first.signal(SIGKILL)
            _ = await first.wait()
            #expect(!first.stdout.contains("-> 500"), "\(first.stdout)")

            // When: urlpoll restarts while the service is still down.
            let second = try CLIProcess(["run", script.path, "--data", folder.path])
            defer { second.signal(SIGKILL) }
            // Then: the failure is alerted, once, as a replay; the first result's hook is not run again.
            try await second.waitForOutput(
                "ALERT 200 OK -> 500 Internal Server Error replayed", limit: .seconds(20))
            #expect(second.stderr.contains("replaying 1 on_change hook"), "\(second.stderr)")
            #expect(Self.count(folder, "SELECT count(*) FROM state_change WHERE hook_started = 0") == 0)
            let before = flip.server.requests.count
            #expect(await eventually(within: .seconds(20)) { flip.server.requests.count >= before + 20 })
            second.signal(SIGKILL)
            _ = await second.wait()
            #expect(second.stdout.components(separatedBy: "ALERT").count - 1 == 1, "\(second.stdout)")

            // And: a third start, after the replay started, alerts nothing again.
            let third = try CLIProcess(["run", script.path, "--data", folder.path])
            defer { third.signal(SIGKILL) }
            try await third.waitForStderr("resuming 1 URL", limit: .seconds(20))
            let again = flip.server.requests.count
            #expect(await eventually(within: .seconds(20)) { flip.server.requests.count >= again + 20 })
            third.signal(SIGTERM)
            #expect(await third.wait() == 0)
            #expect(!third.stdout.contains("ALERT"), "\(third.stdout)")
            #expect(Self.count(folder, "SELECT count(*) FROM state_change") == 2)
        }
    }

    /// Issue 14 (#2): a restart while the `--data` disk was full exited 2 (`disk I/O error (SQLite 10)`) and
    /// polled nothing. It now starts: the states are read without writing, one line says the disk is full,
    /// polling and alerts go on, and history is written again once there is space.
    @Test(.enabled(if: getuid() == 0, "mounts a 2 MiB tmpfs, which needs root"))
    func restartOnAFullDisk_resumesAndAlerts_andWritesHistoryOnceThereIsSpace() async throws {
        let flip = try Flip()
        flip.answer("500 Internal Server Error")
        let folder = Folder()
        let disk = folder.path + "/disk"
        let data = disk + "/d"
        let mounted = try await runShell(
            "mkdir -p \"$0\" && mount -t tmpfs -o size=2m tmpfs \"$0\"", [disk], limit: .seconds(10))
        try #require(mounted?.status == 0, "\(mounted?.stderr ?? "mount hung")")
        defer { _ = try? Process.run(URL(fileURLWithPath: "/bin/umount"), arguments: ["-l", disk]).waitUntilExit() }
        // Given: a store whose URL is down, and a disk filled up after a clean stop.
        let first = try CLIProcess(["run", flip.script.path, "--data", data])
        try await first.waitForOutput("ALERT nil -> 500 Internal Server Error")
        first.signal(SIGTERM)
        #expect(await first.wait() == 0)
        _ = try await runShell("dd if=/dev/zero of=\"$0\" bs=64k count=64", [disk + "/fill"], limit: .seconds(10))
        #expect(SQLiteHistoryStore.diskIsFull(disk))

        // When: urlpoll restarts on it.
        let second = try CLIProcess(["run", flip.script.path, "--data", data])
        defer { second.signal(SIGKILL) }
        // Then: it says the disk is full, resumes the state (no alert for the URL still down), and polls on.
        try await second.waitForStderr("the disk is full", limit: .seconds(20))
        try await second.waitForStderr("resuming 1 URL", limit: .seconds(20))
        #expect(second.stderr.contains("urlpoll starts without writing history"), "\(second.stderr)")
        let before = flip.server.requests.count
        #expect(await eventually(within: .seconds(20)) { flip.server.requests.count >= before + 10 })
        #expect(!second.stdout.contains("ALERT"), "\(second.stdout)")
        // And: a recovery is alerted though nothing can be written.
        flip.answer("200 OK")
        try await second.waitForOutput("ALERT 500 Internal Server Error -> 200 OK", limit: .seconds(20))
        // When: space comes back, history is written again (the recovery's state at the latest with the
        // minute's tick: it is written with the next change or tick).
        try FileManager.default.removeItem(atPath: disk + "/fill")
        flip.answer("500 Internal Server Error")
        try await second.waitForOutput("ALERT 200 OK -> 500 Internal Server Error", limit: .seconds(20))
        try await second.waitForStderr("history is written again", limit: .seconds(20))
        second.signal(SIGTERM)
        #expect(await second.wait(limit: .seconds(20)) == 0)
        #expect(Self.count(Folder.at(data), "SELECT count(*) FROM url_state WHERE state = 'down'") == 1)
    }

    /// Issue 14 (#8): `--state FILE` given with a `--data` store that holds states was ignored without a word,
    /// though the file was newer (a run with `--state` alone in between), so a new outage fired no alert.
    /// The newer one is resumed from, and a line says which and why.
    @Test func stateFileNewerThanTheStore_isResumedFrom_andSaidSo() async throws {
        let flip = try Flip()
        let folder = Folder()
        let state = try TemporaryScript("", name: "state.json")
        try FileManager.default.removeItem(atPath: state.path)
        func run(_ arguments: [String], until alert: String) async throws -> CLIProcess {
            let process = try CLIProcess(["run", flip.script.path] + arguments)
            try await process.waitForOutput(alert, limit: .seconds(20))
            process.signal(SIGTERM)
            #expect(await process.wait() == 0)
            return process
        }
        // Given: both hold the URL down; then a run with the file alone sees it recover.
        flip.answer("500 Internal Server Error")
        _ = try await run(["--state", state.path, "--data", folder.path], until: "ALERT nil -> 500")
        flip.answer("200 OK")
        _ = try await run(["--state", state.path], until: "ALERT 500 Internal Server Error -> 200 OK")

        // When: it fails again, and urlpoll runs with both.
        flip.answer("500 Internal Server Error")
        let third = try await run(
            ["--state", state.path, "--data", folder.path], until: "ALERT 200 OK -> 500 Internal Server Error")
        // Then: it resumed from the newer file (so the outage is alerted), and said so.
        #expect(third.stderr.contains("\(state.path) is newer than \(folder.path)/urlpoll.sqlite"), "\(third.stderr)")
        #expect(third.stderr.contains("resuming from the state file"))
    }

    /// Issue 14 (#8): with the store the newer one, a line says the file is not read.
    @Test func storeNewerThanTheStateFile_isResumedFrom_andSaidSo() async throws {
        let flip = try Flip()
        let folder = Folder()
        let state = try TemporaryScript("", name: "state.json")
        try FileManager.default.removeItem(atPath: state.path)
        let first = try CLIProcess(["run", flip.script.path, "--state", state.path])
        try await first.waitForOutput("ALERT nil -> 200 OK")
        first.signal(SIGTERM)
        #expect(await first.wait() == 0)
        let second = try CLIProcess(["run", flip.script.path, "--data", folder.path])
        try await second.waitForOutput("ALERT nil -> 200 OK")
        second.signal(SIGTERM)
        #expect(await second.wait() == 0)

        let polled = flip.server.requests.count
        let third = try CLIProcess(["run", flip.script.path, "--state", state.path, "--data", folder.path])
        try await third.waitForStderr("resuming 1 URL state from \(folder.path)/urlpoll.sqlite")
        // Stopped once it polls (its SIGTERM handler is in place by then; a signal during its start would end
        // it as the default action does).
        #expect(await eventually { flip.server.requests.count > polled })
        third.signal(SIGTERM)
        #expect(await third.wait() == 0)
        #expect(third.stderr.contains("\(state.path) is not read: \(folder.path)/urlpoll.sqlite holds newer states"))
        #expect(!third.stdout.contains("ALERT"))
    }

    /// Two URLs that differ only by their password print alike (`probe:xxxxx@`): the store keeps each its
    /// own row (its ordinal among URLs that print alike), changes and rollups, both resume after a SIGKILL
    /// without a re-alert, `urlpoll.history` tells them apart, and no password reaches the file.
    @Test func urlsThatPrintAlike_keepTheirOwnHistory_andBothResume() async throws {
        // probe:A is let in, probe:B is refused (401: down).
        let server = try RecordingServer { request in
            request.header("Authorization") == ["Basic cHJvYmU6QQ=="]
                ? [.ok(request)] : [.ok(request, body: "", status: "401 Unauthorized")]
        }
        let folder = Folder()
        let script = try TemporaryScript(
            """
            status_interval = 0.1
            poll_interval = 0.05
            error_backoff = 0
            urls = { "http://probe:A@127.0.0.1:\(server.port)/x", "http://probe:B@127.0.0.1:\(server.port)/x" }
            function on_change(s, prev) print("CHANGE " .. s.name .. " " .. s.status) end
            function report(s)
              local h = urlpoll.history(s.raw_url, 600)
              print("HISTORY " .. s.name .. " " .. h.polls .. " " .. h.failures .. " " .. #h.changes)
              if s.index == s.count then print("REPORT") end
            end
            """)
        let shown = "http://probe:xxxxx@127.0.0.1:\(server.port)/x"
        // Given: a first run whose first results (one up, one down) reached the store, then SIGKILL.
        let first = try CLIProcess(["run", script.path, "--data", folder.path])
        try await first.waitForOutput("REPORT", count: 2)
        let written = await eventually(within: .seconds(20)) {
            Self.count(folder, "SELECT count(*) FROM state_change") == 2
                && Self.count(folder, "SELECT count(*) FROM url_state WHERE status IS NOT NULL") == 2
        }
        #expect(written, "the first results were not written apart: \(first.stderr)")
        first.signal(SIGKILL)
        _ = await first.wait()
        #expect(first.stdout.contains("CHANGE \(shown) 200 OK"))
        #expect(first.stdout.contains("CHANGE \(shown) (2) 401 Unauthorized"))

        // When: it starts again on the same folder and reports a few times.
        let second = try CLIProcess(["run", script.path, "--data", folder.path])
        try await second.waitForOutput("REPORT", count: 4)
        second.signal(SIGTERM)
        #expect(await second.wait() == 0)

        // Then: both resumed (no change announced, none logged twice), each with its own row and rollups.
        #expect(second.stderr.contains("resuming 2 URL states"), "\(second.stderr)")
        #expect(!second.stdout.contains("CHANGE"), "\(second.stdout)")
        #expect(Self.count(folder, "SELECT count(*) FROM state_change") == 2)
        #expect(Self.count(folder, "SELECT count(*) FROM url_state") == 2)
        #expect(Self.count(folder, "SELECT count(*) FROM url_state WHERE state = 'up' AND ordinal = 1") == 1)
        #expect(Self.count(folder, "SELECT count(*) FROM url_state WHERE state = 'down' AND ordinal = 2") == 1)
        let upFailures =
            "SELECT sum(r.failures) FROM rollup_hour r JOIN url_state u ON u.id = r.url_id WHERE u.ordinal = 1"
        #expect(Self.count(folder, upFailures) == 0)
        let downPollsNotFailed =
            "SELECT sum(r.polls - r.failures) FROM rollup_hour r JOIN url_state u ON u.id = r.url_id WHERE u.ordinal = 2"
        #expect(Self.count(folder, downPollsNotFailed) == 0)
        // urlpoll.history(s.raw_url, …) reads each URL's own rollups and changes: the down one's polls are
        // all failures, the up one's none.
        let lines = second.stdout.split(separator: "\n").filter { $0.hasPrefix("HISTORY ") }
        let up = try #require(lines.last { $0.hasPrefix("HISTORY \(shown) ") && !$0.contains("(2)") })
        let down = try #require(lines.last { $0.hasPrefix("HISTORY \(shown) (2) ") })
        let upFields = up.split(separator: " ").suffix(3).compactMap { Int($0) }
        let downFields = down.split(separator: " ").suffix(3).compactMap { Int($0) }
        #expect(upFields.count == 3 && upFields[0] > 0 && upFields[1] == 0 && upFields[2] == 1, "\(up)")
        #expect(downFields.count == 3 && downFields[0] == downFields[1] && downFields[2] == 1, "\(down)")
        // And: no password is in the file (nor its WAL).
        for file in ["urlpoll.sqlite", "urlpoll.sqlite-wal"] {
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: folder.path + "/" + file))) ?? Data()
            #expect(bytes.range(of: Data("probe:A@".utf8)) == nil && bytes.range(of: Data("probe:B@".utf8)) == nil)
        }
    }

    @Test func newerStore_isRefusedWithExit2_andLeftAsItIs() async throws {
        let folder = Folder()
        _ = try SQLiteHistoryStore(directory: folder.path)
        let queue = try DatabaseQueue(path: folder.path + "/urlpoll.sqlite")
        try await queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v9')") }
        try queue.close()
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }")

        let run = try await CLIProcess.run(["run", script.path, "--data", folder.path])

        #expect(run.status == 2)
        #expect(
            run.stderr.hasPrefix(
                "urlpoll: --data: \(folder.path)/urlpoll.sqlite was written by a newer urlpoll (schema v9; this urlpoll knows up to v5)"
            ))
        #expect(Self.count(folder, "SELECT count(*) FROM grdb_migrations") == 6)
    }

    /// Issue 14 (F2): SIGTERM while another process held the store's write lock (a backup, an operator's
    /// `sqlite3` session) waited for the lock: 16.5 s with a 30-s lock, 46.3 s with a 60-s one. The store
    /// gets 3 s of the stop; then the writer interrupts it, says what was not recorded, and urlpoll exits 0.
    @Test func sigtermWhileAnotherConnectionHoldsTheWriteLock_stopsWithinTheLimit_sayingWhatWasNotRecorded()
        async throws
    {
        let folder = Folder()
        let script = try TemporaryScript(
            """
            status_interval = 0.1
            poll_interval = 0.05
            error_backoff = 0
            urls = { "http://127.0.0.1:9/a", "http://127.0.0.1:9/b" }
            function report(s) print("REPORT") end
            """)
        let run = try CLIProcess(["run", script.path, "--data", folder.path])
        try await run.waitForOutput("REPORT", count: 3)
        // Given: another connection holds the store's write lock, as `BEGIN IMMEDIATE` in sqlite3 does, while
        // ticks go on (each one's commit waits for the lock).
        var holding = Configuration()
        holding.allowsUnsafeTransactions = true  // the transaction outlives the access: it is the lock
        let holder = try DatabaseQueue(path: folder.path + "/urlpoll.sqlite", configuration: holding)
        try await holder.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        let reports = run.stdout.components(separatedBy: "REPORT").count - 1
        try await run.waitForOutput("REPORT", count: reports + 20)
        // When: urlpoll is told to stop, the lock still held.
        let start = ContinuousClock.now
        run.signal(SIGTERM)
        let status = await run.wait(limit: .seconds(30))
        let took = ContinuousClock.now - start
        try await holder.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
        if status == nil { run.signal(SIGKILL) }
        // Then: it exits 0 within the store's 3 s (and the stop's own), saying what was not recorded.
        #expect(status == 0, "\(run.stderr)")
        #expect(took < .seconds(8), "\(took)")
        #expect(
            run.stderr.contains(
                "the history store did not answer within 3 s of the stop (another process holds its write lock, or its disk hangs): "
            ), "\(run.stderr)")
        let kept = "\(folder.path)/urlpoll.sqlite.unrecorded.json"
        #expect(
            run.stderr.contains(
                "not recorded (counted in urlpoll_history_lost_total); 2 URL states are kept in \(kept) and written to the store at the next start"
            ), "\(run.stderr)")
        let stopped = try Self.lastCheck(folder)

        // When: urlpoll starts again, the lock released.
        let next = try CLIProcess(["run", script.path, "--data", folder.path])
        try await next.waitForStderr("2 URL states the last stop could not write are written from \(kept)")
        next.signal(SIGTERM)
        #expect(await next.wait(limit: .seconds(30)) == 0)
        // Then: it resumed from the states held at the stop, wrote them, and removed the file.
        #expect(
            next.stderr.contains("2 URL states the last stop could not write are read from \(kept)"), "\(next.stderr)")
        #expect(!FileManager.default.fileExists(atPath: kept))
        #expect(try Self.lastCheck(folder) > stopped)
    }

    /// The latest `checked_at` of the store's `url_state` rows.
    static func lastCheck(_ folder: Folder) throws -> Double {
        let queue = try DatabaseQueue(path: folder.path + "/urlpoll.sqlite")
        return try queue.read { db in try Double.fetchOne(db, sql: "SELECT max(checked_at) FROM url_state") } ?? 0
    }

    @Test func folderInUse_isRefusedWithExit2() async throws {
        let folder = Folder()
        let script = try TemporaryScript(
            """
            status_interval = 0.1
            urls = { "http://127.0.0.1:9/" }
            function report(s) print("REPORT") end
            """)
        let first = try CLIProcess(["run", script.path, "--data", folder.path])
        try await first.waitForOutput("REPORT")
        let second = try await CLIProcess.run(["run", script.path, "--data", folder.path])
        first.signal(SIGTERM)
        #expect(await first.wait() == 0)
        #expect(second.status == 2)
        #expect(
            second.stderr
                == "urlpoll: --data: \(folder.path) is in use by another urlpoll (process \(first.pid)); two instances on one store would mix their histories: give each its own --data folder\n"
        )
    }

    /// The folder's lock is taken before the database is opened, so two urlpolls started at once on a new
    /// folder never migrate it together (SQLite's `UNIQUE constraint failed`, `table … already exists`,
    /// `database is locked`): the second always says the folder is in use, and has not touched the file.
    @Test func folderInUse_isRefusedBeforeTheDatabaseIsOpened() async throws {
        let folder = Folder()
        try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        let lock = try StateFileLock(statePath: folder.path + "/urlpoll.sqlite")
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }")
        let run = try await CLIProcess.run(["once", script.path, "--data", folder.path])
        #expect(run.status == 2)
        #expect(
            run.stderr
                == "urlpoll: --data: \(folder.path) is in use by another urlpoll (process \(getpid())); two instances on one store would mix their histories: give each its own --data folder\n"
        )
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/urlpoll.sqlite"))
        withExtendedLifetime(lock) {}
    }

    /// `--data ""` says the path is empty, not `cannot create the data folder : No such file or directory`.
    @Test func emptyData_saysItIsEmpty() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }")
        let run = try await CLIProcess.run(["once", script.path, "--data", ""])
        #expect(run.status == 2)
        #expect(run.stderr == "urlpoll: --data: the data folder is empty: give a folder path (it is made if missing)\n")
    }

    @Test func retentionOutOfRange_isAUsageError() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }")
        let run = try await CLIProcess.run(["run", script.path, "--data", "/tmp/unused", "--minute-retention", "0"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("--minute-retention must be a number of days from 0.0416 (1 hour) to 36500."))
        // Issue 14 (#12): a negative number said "Missing value for '--minute-retention <days>'".
        for option in ["--minute-retention", "--hour-retention"] {
            let negative = try await CLIProcess.run(["run", script.path, "--data", "/tmp/unused", option, "-1"])
            #expect(negative.status == 64)
            #expect(negative.stderr.contains("\(option) must be a number of days from 0.0416 (1 hour) to 36500."))
        }
        // And: 0.0416, one hour to four places, is taken.
        let folder = Folder()
        let hour = try await CLIProcess.run([
            "once", script.path, "--data", folder.path, "--minute-retention", "0.0416",
        ])
        #expect(hour.status == 1, "\(hour.stderr)")  // the URL is down, the option taken
        #expect(!hour.stderr.contains("must be a number of days"), "\(hour.stderr)")
    }

    /// Issue 14 (#11): the retention options were silently ignored without `--data`, and minutes kept
    /// longer than hours were accepted without a word.
    @Test func retentionWithoutData_orMinutesLongerThanHours_isWarned() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }\nfunction report(s) end")
        let alone = try await CLIProcess.run(["once", script.path, "--minute-retention", "3"])
        #expect(alone.stderr.contains("--minute-retention and --hour-retention have no effect without --data DIR"))
        let folder = Folder()
        let longer = try await CLIProcess.run(
            ["once", script.path, "--data", folder.path, "--minute-retention", "30", "--hour-retention", "10"])
        #expect(longer.stderr.contains("--minute-retention (30.0 days) is longer than --hour-retention (10.0 days)"))
        let plain = try await CLIProcess.run(["once", script.path, "--data", folder.path])
        #expect(!plain.stderr.contains("retention"))
    }

    @Test func stateFileAndAnEmptyStore_resumesFromTheFile_andMovesTheStatesIntoTheStore() async throws {
        try await withDemoSite { (base) async throws in
            let folder = Folder()
            let state = try TemporaryScript("", name: "state.json")
            try FileManager.default.removeItem(atPath: state.path)
            let script = try TemporaryScript(
                """
                status_interval = 0.1
                poll_interval = 0.05
                error_backoff = 0
                urls = { "\(base)/failing" }
                function on_change(s, prev) print("CHANGE " .. s.status) end
                function report(s) print("REPORT") end
                """)
            // Given: a state file written by a run without --data.
            let first = try CLIProcess(["run", script.path, "--state", state.path])
            try await first.waitForOutput("CHANGE")
            try await first.waitForOutput("REPORT", count: 2)
            first.signal(SIGTERM)
            #expect(await first.wait() == 0)

            // When: urlpoll runs with both the state file and a new store.
            let second = try CLIProcess(["run", script.path, "--state", state.path, "--data", folder.path])
            try await second.waitForOutput("REPORT", count: 3)
            let moved = await eventually(within: .seconds(20)) {
                Self.count(folder, "SELECT count(*) FROM url_state WHERE state = 'down'") == 1
            }
            second.signal(SIGTERM)
            #expect(await second.wait() == 0)

            // Then: it resumed from the file (no change announced), said so, and the state is in the store.
            #expect(!second.stdout.contains("CHANGE"))
            #expect(second.stderr.contains("; written to \(folder.path)"))
            #expect(moved)
        }
    }

    /// Issue 14 (#3): the migration run wrote a state from `--state` into the store only once its URL was
    /// polled, so a URL with no result during that run (a server that hangs) lost its state: the next
    /// start, from the store alone, announced its down state again as new. Every state read from the file
    /// is now in the store at once.
    @Test func stateFileMigration_writesEveryStateAtOnce_evenOfAURLWithoutAResult() async throws {
        try await withDemoSite { (base) async throws in
            let folder = Folder()
            let hanging = try HangingListener()
            let state = try TemporaryScript("", name: "state.json")
            try FileManager.default.removeItem(atPath: state.path)
            func script(timeout: Double) throws -> TemporaryScript {
                try TemporaryScript(
                    """
                    status_interval = 0.1
                    poll_interval = 0.05
                    error_backoff = 0
                    urls = { "\(base)/failing", { url = "\(hanging.url)/slow", timeout = \(timeout) } }
                    function on_change(s, prev) print("CHANGE " .. s.url) end
                    function report(s) print("REPORT") end
                    """)
            }
            // Given: a state file in which both URLs are down (the hanging one timed out).
            let quick = try script(timeout: 0.2)
            let first = try CLIProcess(["run", quick.path, "--state", state.path])
            try await first.waitForOutput("CHANGE", count: 2)
            try await first.waitForOutput("REPORT", count: 2)
            first.signal(SIGTERM)
            #expect(await first.wait() == 0)

            // When: the migration run stops before the hanging URL has a result (its timeout is 30 s).
            let slow = try script(timeout: 30)
            let second = try CLIProcess(["run", slow.path, "--state", state.path, "--data", folder.path])
            try await second.waitForOutput("REPORT", count: 2)
            second.signal(SIGTERM)
            #expect(await second.wait() == 0)

            // Then: both states are in the store, the hanging URL's with its error count.
            #expect(second.stderr.contains("resuming 2 URL states from \(state.path); written to "))
            #expect(Self.count(folder, "SELECT count(*) FROM url_state WHERE state = 'down'") == 2)
            #expect(
                Self.count(folder, "SELECT error_count FROM url_state WHERE url = '\(hanging.url)/slow'") == 1)
            #expect(!second.stdout.contains("CHANGE"))
        }
    }

    @Test func dataSetting_keepsHistoryThere_andUrlpollHistoryReadsIt() async throws {
        try await withDemoSite { (base) async throws in
            let folder = Folder()
            let script = try TemporaryScript(
                """
                data = "\(folder.path)"
                status_interval = 0.1
                poll_interval = 0.05
                urls = { "\(base)/healthy" }
                function report(s) print("POLLS " .. urlpoll.history(s.url, 60).polls) end
                """)
            let process = try CLIProcess(["run", script.path])
            // Once a tick has been written, a later report reads it back.
            try await process.waitForOutput("POLLS 1")
            process.signal(SIGTERM)
            #expect(await process.wait() == 0)
            #expect(Self.count(folder, "SELECT count(*) FROM url_state") == 1)
        }
    }

    /// Issue 14 (#12): a relative `data` was taken from the working directory, while `tls.ca_file` is from
    /// the script's folder: it is now from the script's folder too.
    @Test func relativeDataSetting_isFromTheScriptsFolder() async throws {
        let name = "rel-\(UUID().uuidString.prefix(8))"
        let script = try TemporaryScript("data = \"\(name)\"\nurls = { \"http://127.0.0.1:9/\" }")
        let beside = Folder.at(URL(fileURLWithPath: script.path).deletingLastPathComponent().path + "/" + name)
        defer { try? FileManager.default.removeItem(atPath: beside.path) }
        defer { try? FileManager.default.removeItem(atPath: FileManager.default.currentDirectoryPath + "/" + name) }
        let run = try await CLIProcess.run(["once", script.path])
        #expect(run.status == 1, "\(run.stderr)")
        #expect(Self.count(beside, "SELECT count(*) FROM url_state") == 1)
        #expect(!FileManager.default.fileExists(atPath: FileManager.default.currentDirectoryPath + "/" + name))
    }

    @Test func dataSettingThatIsNotAFolderName_isALoadError() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }\ndata = 5\n")
        let run = try await CLIProcess.run(["check", script.path])
        #expect(run.status == 2)
        #expect(
            run.stderr.contains(
                "\(script.path):2: setting 'data' must be the path of a folder for the history store, such as \"/var/lib/urlpoll\" (got number 5)"
            ))
    }

    /// `--data` naming a file (or a path through one) says that it is not a folder, not `File exists`.
    @Test func dataThatIsAFile_saysItIsNotAFolder() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }\n")
        let file = try TemporaryScript("-- a file, not a folder\n")
        for (data, named) in [(file.path, file.path), (file.path + "/history", file.path)] {
            for command in ["run", "once"] {
                let run = try await CLIProcess.run([command, script.path, "--data", data])
                #expect(run.status == 2)
                #expect(
                    run.stderr
                        == "urlpoll: --data: cannot use \(data) as the data folder: \(named) is a file, not a folder\n")
            }
        }
    }

    /// `once --data DIR` keeps its polls and changes in the store, resumes from it as `run` does (a second
    /// `once` announces and logs no change for an unchanged URL), and its `report` reads `urlpoll.history`.
    @Test func onceWithData_recordsItsPolls_andResumesFromTheStore() async throws {
        try await withDemoSite { (base) async throws in
            let folder = Folder()
            let script = try TemporaryScript(
                """
                urls = { "\(base)/healthy", "\(base)/failing" }
                function on_change(s, prev) print("CHANGE " .. s.url .. " " .. s.status) end
                function report(s)
                  print("POLLS " .. s.name .. " " .. urlpoll.history(s.url, 3600).polls)
                  print("ERR " .. s.name .. " " .. s.error_count .. " SINCE " .. string.format("%.3f", s.since))
                end
                """)
            let first = try await CLIProcess.run(["once", script.path, "--data", folder.path])
            #expect(first.status == 1)
            #expect(first.stdout.components(separatedBy: "CHANGE").count - 1 == 2)
            #expect(Self.count(folder, "SELECT sum(polls) FROM rollup_hour") == 2)
            #expect(Self.count(folder, "SELECT count(*) FROM state_change") == 2)

            // This run's poll is written before the report, always.
            #expect(first.stdout.contains("POLLS \(base)/healthy 1\n"), "\(first.stdout)")
            #expect(first.stdout.contains("ERR \(base)/failing 1 "), "\(first.stdout)")
            func since(_ out: String) -> String? {
                out.split(separator: "\n").first { $0.hasPrefix("ERR \(base)/failing ") }?
                    .components(separatedBy: " SINCE ").last
            }

            let second = try await CLIProcess.run(["once", script.path, "--data", folder.path])
            #expect(second.status == 1)
            #expect(!second.stdout.contains("CHANGE"))
            // The report reads the first run's poll and this one's; the down URL's error count goes on and its
            // since is kept, as under `run`.
            #expect(second.stdout.contains("POLLS \(base)/healthy 2\n"), "\(second.stdout)")
            #expect(second.stdout.contains("ERR \(base)/failing 2 "), "\(second.stdout)")
            #expect(since(second.stdout) != nil)
            #expect(since(second.stdout) == since(first.stdout))
            #expect(Self.count(folder, "SELECT sum(polls) FROM rollup_hour") == 4)
            #expect(Self.count(folder, "SELECT count(*) FROM state_change") == 2)
        }
    }

    /// Issue 14 (#9): the `url_state` row is written only when the state changes, so a restart resumed
    /// `polls` from the URL's last change (7 polls made, the next run counted on from 3). It now counts on
    /// from the last tick written: the rollups' polls after the row's.
    @Test func restartWithData_countsPollsOn_fromTheLastTickWritten() async throws {
        try await withDemoSite { (base) async throws in
            let folder = Folder()
            let script = try TemporaryScript(
                """
                urls = { "\(base)/healthy" }
                function report(s) print("POLLS " .. s.polls) end
                """)
            // Given: three runs, each a process of its own polling an unchanged URL once.
            var printed: [String] = []
            for _ in 1...3 {
                let run = try await CLIProcess.run(["once", script.path, "--data", folder.path])
                #expect(run.status == 0, "\(run.stderr)")
                printed += run.stdout.split(separator: "\n").filter { $0.hasPrefix("POLLS ") }.map(String.init)
            }
            // Then: the count goes on from run to run, though the state row was written once.
            #expect(printed == ["POLLS 1", "POLLS 2", "POLLS 3"])
            #expect(Self.count(folder, "SELECT polls FROM url_state") == 1)
            // And: `run`, stopped and started again, goes on from there too.
            let runScript = try TemporaryScript(
                """
                poll_interval = 0.05
                status_interval = 0.1
                urls = { "\(base)/healthy" }
                function on_result(s) print("POLLS " .. s.polls) end
                """)
            let first = try CLIProcess(["run", runScript.path, "--data", folder.path])
            try await first.waitForOutput("POLLS 9")
            first.signal(SIGTERM)
            #expect(await first.wait(limit: .seconds(20)) == 0)
            let last = try #require(
                first.stdout.split(separator: "\n").last { $0.hasPrefix("POLLS ") }.flatMap { Int($0.dropFirst(6)) })
            let second = try CLIProcess(["run", runScript.path, "--data", folder.path])
            defer { second.signal(SIGKILL) }
            try await second.waitForOutput("POLLS ")
            let resumed = second.stdout.split(separator: "\n").first { $0.hasPrefix("POLLS ") }.flatMap {
                Int($0.dropFirst(6))
            }
            #expect((resumed ?? 0) > last, "\(first.stdout) then \(second.stdout)")
        }
    }

    @Test func check_listsTheDataFolder_theTitle_andEachURLsGroup() async throws {
        let script = try TemporaryScript(
            """
            data = "/var/lib/urlpoll"
            title = "Shop status"
            urls = { { url = "http://127.0.0.1:9/", group = "shop" } }
            """)
        let run = try await CLIProcess.run(["check", script.path])
        #expect(run.status == 0)
        #expect(run.stdout.contains(" data=/var/lib/urlpoll title=Shop status\n"))
        #expect(run.stdout.contains(" http://127.0.0.1:9/ [group=shop]\n"))
    }
}
