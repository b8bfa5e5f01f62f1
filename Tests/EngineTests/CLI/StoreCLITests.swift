import Foundation
import Testing

/// `urlpoll run --store`: what the command line refuses, in words and with exit status 2, before polling.
@Suite(.timeLimit(.minutes(2))) struct StoreCLITests {
    @Test func passwordInTheStoreURL_isRefusedWithExit2_withoutPrintingIt() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }")

        let run = try await CLIProcess.run(["run", script.path, "--store", "postgresql://u:s3cr3t@127.0.0.1:9/x"])

        #expect(run.status == 2)
        #expect(run.stderr.contains("put it in PGPASSWORD or ~/.pgpass instead"))
        #expect(!run.stderr.contains("s3cr3t"))
        #expect(!run.stdout.contains("s3cr3t"))
    }

    @Test func storeWithData_isRefusedWithExit2() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }")
        let folder = HistoryCLITests.Folder()

        let run = try await CLIProcess.run([
            "run", script.path, "--store", "postgresql://u@127.0.0.1:9/x", "--data", folder.path,
        ])

        #expect(run.status == 2)
        #expect(run.stderr.contains("it does not go with --state or --data"))
    }

    @Test func unreachableStore_isRefusedWithExit2_inWords() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }")
        let port = try closedPort()

        let run = try await CLIProcess.run([
            "run", script.path, "--store", "postgresql://u@127.0.0.1:\(port)/x?sslmode=disable",
        ])

        #expect(run.status == 2)
        #expect(
            run.stderr == "urlpoll: --store: postgresql://u@127.0.0.1:\(port)/x: cannot connect: Connection refused\n",
            "\(run.stderr)")
    }

    /// Fault 6 of the new-user test: a frozen PostgreSQL was called "a server of another kind". A server
    /// that accepts the connection and says nothing (frozen, stopped, overloaded; here a listener that never
    /// reads, as a frozen postmaster's socket is) is told as such.
    @Test func storeThatAcceptsButNeverAnswers_isRefusedWithExit2_inWords() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }")
        let listener = try HangingListener()

        let run = try await CLIProcess.run([
            "run", script.path, "--store", "postgresql://u@127.0.0.1:\(listener.port)/x?sslmode=disable",
        ])

        #expect(run.status == 2)
        #expect(
            run.stderr
                == "urlpoll: --store: postgresql://u@127.0.0.1:\(listener.port)/x: cannot connect: the server accepted the connection but did not answer within 5 s (is the server overloaded or stopped?)\n",
            "\(run.stderr)")
    }

    @Test func storeOnAServerOfAnotherKind_thatAnswers_isRefusedWithExit2_inWords() async throws {
        // A server that greets each connection first (as SSH does): not PostgreSQL's answer.
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }")
        let server = try await BannerServer(banner: "SSH-2.0-test")
        defer { Task { try? await server.stop() } }

        let run = try await CLIProcess.run([
            "run", script.path, "--store", "postgresql://u@127.0.0.1:\(server.port)/x?sslmode=disable",
        ])

        #expect(run.status == 2)
        #expect(
            run.stderr
                == "urlpoll: --store: postgresql://u@127.0.0.1:\(server.port)/x: cannot connect: the server answered something that is not PostgreSQL (is a server of another kind listening on that port?)\n",
            "\(run.stderr)")
    }

    /// Issue 15: a server that accepts and hangs up at once is named by its host and port, with the
    /// question whether it is PostgreSQL.
    @Test func storeOnAServerThatClosesAtOnce_isRefusedWithExit2_askingWhetherItIsPostgreSQL() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }")
        let listener = try ClosingListener()

        let run = try await CLIProcess.run([
            "run", script.path, "--store", "postgresql://u@127.0.0.1:\(listener.port)/x?sslmode=disable",
        ])

        #expect(run.status == 2)
        #expect(
            run.stderr
                == "urlpoll: --store: postgresql://u@127.0.0.1:\(listener.port)/x: cannot connect: the server at 127.0.0.1:\(listener.port) closed the connection before PostgreSQL's start-up was done (is it PostgreSQL? a server of another kind listening on that port hangs up so)\n",
            "\(run.stderr)")
    }

    @Test func storeFromANewerUrlpoll_isRefusedWithExit2_andLeftAsItIs() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/\" }")
        // A newer urlpoll's schema.
        _ = try await TestPostgres.column(url, "CREATE TABLE urlpoll_schema (version integer NOT NULL)", as: Int32.self)
        _ = try await TestPostgres.column(url, "INSERT INTO urlpoll_schema VALUES (7) RETURNING 1", as: Int32.self)

        let run = try await CLIProcess.run(["run", script.path, "--store", url])

        #expect(run.status == 2)
        #expect(run.stderr.contains("holds urlpoll's schema version 7, written by a newer urlpoll"), "\(run.stderr)")
        // The words alone, not postgres-nio's wrapper around them.
        #expect(!run.stderr.contains("PostgresTransactionError"), "\(run.stderr)")
        #expect(!run.stderr.contains("Optional("), "\(run.stderr)")
        #expect(run.stderr.filter { $0 == "\n" }.count == 1, "\(run.stderr)")
        #expect(try await TestPostgres.column(url, "SELECT version FROM urlpoll_schema", as: Int32.self) == [7])
    }

    @Test func storeSetting_isCheckedAtLoad_withFileLine_andShownByCheck() async throws {
        let bad = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/" }
            store = "postgresql://u:s3cr3t@db/x"
            """)
        let refused = try await CLIProcess.run(["check", bad.path])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("script.lua:2: setting 'store': "), "\(refused.stderr)")
        #expect(!refused.stderr.contains("s3cr3t"))

        let good = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/" }
            store = "postgresql://u@db:5433/x"
            """)
        let checked = try await CLIProcess.run(["check", good.path])
        #expect(checked.status == 0)
        #expect(checked.stdout.contains(" store=postgresql://u@db:5433/x"))
    }

    @Test func once_ignoresTheStoreSetting_withAWarningInWords_andPollsItself() async throws {
        let server = try RecordingServer.keepAlive()
        let script = try TemporaryScript(
            """
            urls = { "\(server.url)/once" }
            store = "postgresql://u@127.0.0.1:\(try closedPort())/x?sslmode=disable"
            """)

        let run = try await CLIProcess.run(["once", script.path])

        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("the 'store' setting is ignored by `urlpoll once`"), "\(run.stderr)")
        #expect(server.requests.count == 1)
    }

    @Test func once_ignoresTheStoreOption_withAWarningInWords_andPollsItself() async throws {
        let server = try RecordingServer.keepAlive()
        let script = try TemporaryScript(#"urls = { "\#(server.url)/once" }"#)
        let store = "postgresql://u@127.0.0.1:\(try closedPort())/x?sslmode=disable"

        let run = try await CLIProcess.run(["once", script.path, "--store", store])

        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("--store is ignored by `urlpoll once`"), "\(run.stderr)")
        #expect(server.requests.count == 1)
    }

    /// Fault 3 of the new-user test: instances started with other `--poll-interval`/`--timeout` shared one
    /// schedule in silence, each URL's interval that of whichever instance claimed it. The settings as the
    /// command line leaves them are part of the script's identity: the documented rule of different scripts
    /// applies, and each side is told in words.
    @Test func anotherPollInterval_onTheCommandLine_isAnotherScript_toldInWordsOnBothSides() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let script = try TemporaryScript("urls = { \"http://127.0.0.1:9/a\" }\nstatus_interval = 1")
        let first = try CLIProcess(["run", script.path, "--store", url, "--poll-interval", "4"])
        defer { first.signal(SIGKILL) }
        try await first.waitForStderr("sharing the schedule of 1 URL in", limit: .seconds(30))
        let second = try CLIProcess([
            "run", script.path, "--store", url, "--poll-interval", "30", "--timeout", "20",
        ])
        defer { second.signal(SIGKILL) }

        try await second.waitForStderr("followed another script, loaded by", limit: .seconds(30))
        try await first.waitForStderr("follows another script than this instance's", limit: .seconds(30))
        // The URL's lease is the second's (timeout 20 s + 10 s), not the first's.
        #expect(
            try await TestPostgres.column(url, "SELECT lease_seconds FROM urlpoll_targets", as: Double.self) == [30])
    }

    @Test func sigterm_removesTheInstancesRow_andReleasesTheLeaseOfItsPollInFlight() async throws {
        guard let url = try await TestPostgres.database() else { return }
        // A URL whose answer takes 60 s: its poll is in flight, its row leased, when SIGTERM comes.
        let server = try RecordingServer { request in [.pause(.seconds(60)), .ok(request)] }
        let script = try TemporaryScript("urls = { \"\(server.url)/slow\" }\ntimeout = 50")
        let process = try CLIProcess(["run", script.path, "--store", url])
        let leased = {
            try await TestPostgres.column(
                url, "SELECT count(*) FROM urlpoll_targets WHERE lease_owner IS NOT NULL", as: Int64.self
            ).first ?? 0
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if !server.requests.isEmpty, (try? await leased()) == 1 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await TestPostgres.column(url, "SELECT count(*) FROM urlpoll_instances", as: Int64.self) == [1])
        #expect(try await leased() == 1)

        process.signal(SIGTERM)

        #expect(await process.wait(limit: .seconds(30)) == 0, "\(process.stderr)")
        #expect(try await TestPostgres.column(url, "SELECT count(*) FROM urlpoll_instances", as: Int64.self) == [0])
        #expect(try await leased() == 0)
    }

    /// Issue 15: with `--store`, `urlpoll.history` and `/status` read the fleet's history from PostgreSQL:
    /// every instance shows every URL's polls, whichever instance polled it, with the same ids.
    @Test func twoInstances_readTheFleetsHistory_inUrlpollHistoryAndStatus() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let server = try RecordingServer.keepAlive()
        let script = try TemporaryScript(
            """
            urls = { "\(server.url)/a", "\(server.url)/b" }
            poll_interval = 0.2
            status_interval = 0.2
            function report(s) print("POLLS " .. s.url .. " " .. urlpoll.history(s.url, 60).polls) end
            """)
        let instances = try (0..<2).map { _ in
            try CLIProcess(["run", script.path, "--store", url, "--listen", "127.0.0.1:0"])
        }
        defer { for process in instances { process.signal(SIGKILL) } }
        var ports: [Int] = []
        for process in instances {
            try await process.waitForStderr("listening on 127.0.0.1:", limit: .seconds(30))
            let line = try #require(
                process.stderr.split(separator: "\n").first { $0.contains("listening on 127.0.0.1:") })
            ports.append(try #require(Int(line.split(separator: ":").last?.prefix { $0.isNumber } ?? "")))
        }
        // Given: both instances have polled (each writes back what it polled), 20 polls in all.
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, server.requests.count < 20 {
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(server.requests.count >= 20)
        let written = try #require(
            try await TestPostgres.column(url, "SELECT sum(polls)::bigint FROM urlpoll_rollups", as: Int64.self).first)
        // Then: the report (on the leader) counts the fleet's polls of each URL, not only its own.
        let leader = try #require(instances.first { $0.stdout.contains("POLLS") } ?? instances.first)
        do {
            try await leader.waitForOutput("POLLS \(server.url)/a", limit: .seconds(10))
        } catch {
            Issue.record("\(error)\n\(instances.map(\.stderr).joined(separator: "\n---\n"))")
        }
        // And each instance's /status gives each URL the same id and an uptime from the fleet's polls.
        var ids: [[String]] = []
        for port in ports {
            let (status, _, body) = try await fetch("http://127.0.0.1:\(port)/status")
            #expect(status == 200, "\(body)")
            let document = try #require(
                try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            let urls = try #require(document["urls"] as? [[String: Any]])
            #expect(urls.count == 2)
            #expect(urls.allSatisfy { ($0["uptime_1d"] as? Double) == 1 }, "\(body)")
            ids.append(urls.map { "\($0["id"] ?? "none")" })
        }
        #expect(ids[0] == ids[1])
        #expect(!ids[0].contains("none"))
        // And /status/ID answers each URL's hour series on every instance.
        for port in ports {
            for id in ids[0] {
                let (status, _, body) = try await fetch("http://127.0.0.1:\(port)/status/\(id)")
                #expect(status == 200, "\(body)")
                #expect(body.contains("\"polls\""), "\(body)")
            }
        }
        let counted = leader.stdout.split(separator: "\n").filter { $0.hasPrefix("POLLS") }.compactMap {
            $0.split(separator: " ").last.flatMap { Int64($0) }
        }
        #expect(counted.max() ?? 0 >= 5, "\(leader.stdout)")
        #expect(written >= 20)
    }
}
