import Foundation
import Testing

/// The process among its surroundings: a standard output that is blocked, closed or full, and a second
/// instance on the same state file. Each runs the built binary as a child process.
@Suite(.timeLimit(.minutes(2))) struct SurroundingsTests {
    @Test func run_whenNobodyReadsStandardOutput_keepsPolling_andWarnsOfDroppedLines() async throws {
        let server = try RecordingServer.keepAlive()
        let base = server.url
        // 200 URLs as JSON lines every 50 ms: far more than a pipe holds (64 KiB) within the first tick.
        let urls = (1...200).map { "\"\(base)/p\($0)\"" }.joined(separator: ", ")
        let script = try TemporaryScript(
            """
            poll_interval = 0.2
            status_interval = 0.05
            urls = { \(urls) }
            """)
        let unread = Pipe()
        let process = try CLIProcess(["run", script.path, "--format", "json"], standardOutput: unread)

        // When: the pipe has long been full (200 polls print a tick's worth), polling goes on.
        #expect(await eventually(within: .seconds(30)) { server.requests.count >= 400 })
        let before = server.requests.count
        let kept = await eventually(within: .seconds(20)) { server.requests.count >= before + 1_000 }

        // Then:
        #expect(kept, "polls stopped at \(server.requests.count) while standard output was blocked")
        try await process.waitForStderr("stdout is blocked: ", limit: .seconds(20))
        process.signal(SIGINT)
        let status = await process.wait(limit: .seconds(20))
        if status == nil { process.signal(SIGKILL) }
        #expect(status == 0)
        #expect(process.stderr.components(separatedBy: "stdout is blocked").count - 1 <= 3)
        try unread.fileHandleForReading.close()
    }

    @Test func run_pipedIntoHead_endsWhenHeadExits_withStatus0() async throws {
        try await withDemoSite { (base) async throws in
            let script = try TemporaryScript(
                """
                status_interval = 0.05
                urls = { "\(base)/healthy" }
                """)
            let result = try await runShell(
                #"timeout 20 "$0" run "$1" | head -1; echo "urlpoll exited ${PIPESTATUS[0]}""#,
                [urlpollBinary, script.path], limit: .seconds(40))
            let (status, stdout, _) = try #require(result)
            #expect(status == 0)
            #expect(stdout == "Current state:\nurlpoll exited 0\n")
        }
    }

    @Test func once_whenStandardOutputIsAFullDisk_saysSo() async throws {
        try await withDemoSite { (base) async throws in
            let script = try TemporaryScript(
                """
                urls = { "\(base)/healthy" }
                """)
            let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
            let process = try CLIProcess(["once", script.path], standardOutput: full)
            #expect(await process.wait(limit: .seconds(30)) == 0)
            #expect(
                process.stderr.contains("cannot write to standard output: No space left on device: 2 lines dropped"),
                "\(process.stderr)")
        }
    }

    @Test func run_whenAnotherInstanceHasTheStateFile_refusesToStart_withStatus2() async throws {
        try await withDemoSite { (base) async throws in
            let script = try TemporaryScript(
                """
                status_interval = 0.1
                urls = { "\(base)/healthy" }
                """)
            let state = script.sibling("state.json")
            let first = try CLIProcess(["run", script.path, "--state", state])
            try await first.waitForOutput("Current state:")

            // When: a second instance is started on the same state file.
            let second = try CLIProcess(["run", script.path, "--state", state])
            let status = await second.wait(limit: .seconds(30))
            if status == nil { second.signal(SIGKILL) }

            // Then: it refuses, naming the file and the process that has it; the first runs on.
            #expect(status == 2)
            #expect(
                second.stderr.contains(
                    "urlpoll: the state file \(state) is in use by another urlpoll (process \(first.pid))"),
                "\(second.stderr)")
            first.signal(SIGINT)
            #expect(await first.wait() == 0)

            // And once the first has stopped, the file is free again.
            let third = try CLIProcess(["run", script.path, "--state", state])
            try await third.waitForOutput("Current state:")
            third.signal(SIGINT)
            #expect(await third.wait() == 0)
        }
    }

    @Test func start_raisesTheSoftOpenFileLimitToTheHardOne_andWarnsWhenTheHardOneIsLow() async throws {
        // The script reads its own process's limits at load.
        let urls = (1...300).map { "\"http://127.0.0.1:9/p\($0)\"" }.joined(separator: ", ")
        let script = try TemporaryScript(
            """
            timeout = 0.5
            for line in io.lines("/proc/self/limits") do
              if line:find("Max open files") then print((line:gsub("%s+", " "))) end
            end
            urls = { \(urls) }
            """)
        let raised = try #require(
            try await runShell(
                #"ulimit -Sn 100; ulimit -Hn 4096; timeout 30 "$0" once "$1""#, [urlpollBinary, script.path],
                limit: .seconds(40)))
        #expect(raised.stdout.hasPrefix("Max open files 4096 4096 files"), "\(raised.stdout)")
        #expect(!raised.stderr.contains("open-file limit"))

        let low = try #require(
            try await runShell(
                #"ulimit -n 100; timeout 30 "$0" once "$1""#, [urlpollBinary, script.path], limit: .seconds(40)))
        #expect(low.stdout.hasPrefix("Max open files 100 100 files"))
        #expect(
            low.stderr.contains(
                "the open-file limit is 100 (ulimit -n), below the 322 that 300 URLs on 2 pollers may need"),
            "\(low.stderr)")
    }

    @Test func start_whenTheScriptHoldsEveryDescriptor_exits2_sayingSoInWords_withoutATrap() async throws {
        // Given: a script that opens files until the limit refuses one, and keeps them all. urlpoll reads the
        // system's trusted certificates after the script has loaded (for tls:// and https:// polls).
        let script = try TemporaryScript(
            """
            held = {}
            while true do
              local f = io.open("/dev/null")
              if not f then break end
              held[#held + 1] = f
            end
            urls = { "http://127.0.0.1:9/" }
            """)

        // When: it starts under a low limit.
        let run = try #require(
            try await runShell(
                #"ulimit -n 128; timeout 30 "$0" run "$1""#, [urlpollBinary, script.path], limit: .seconds(40)))

        // Then: it stops, exit 2, saying why in words: no SIGILL (status 132: a debug build trapped on the
        // HTTP clients it dropped unstopped), no TLS library dump.
        #expect(run.status == 2, "\(run)")
        #expect(
            run.stderr.contains(
                "urlpoll: cannot start: every file descriptor the open-file limit (128, ulimit -n) allows is in use (EMFILE)"
            ), "\(run.stderr)")
        #expect(!run.stderr.contains("OPENSSL") && !run.stderr.contains(".build"), "\(run.stderr)")
    }

    @Test func run_whenOutOfFileDescriptors_reportsNoURLDown_andSaysSoOnce() async throws {
        // Given: 5 servers on 127.0.0.2…127.0.0.6, 8 URLs each, and a script that keeps all but 12 of its 128
        // descriptors open, as a script holding its own files would: 40 polls in flight at the start need
        // more than are left.
        let servers = try (2...6).map { try RecordingServer.keepAlive(host: "127.0.0.\($0)") }
        let bases = servers.map(\.url)
        let urls = bases.flatMap { base in (1...8).map { "\"\(base)/p\($0)\"" } }
        let script = try TemporaryScript(
            """
            poll_interval = 60
            held = {}
            while true do
              local f = io.open("/dev/null")
              if not f then break end
              held[#held + 1] = f
            end
            for _ = 1, 12 do table.remove(held):close() end
            urls = { \(urls.joined(separator: ", ")) }
            """)

        // When: it runs for 8 s (time for several 1 s retries).
        let run = try #require(
            try await runShell(
                #"ulimit -n 128; timeout 8 "$0" run "$1" --format json"#, [urlpollBinary, script.path],
                limit: .seconds(30)))

        // Then: urlpoll ran out, and said so once, in words.
        let said = run.stderr.components(separatedBy: "urlpoll has run out of file descriptors").count - 1
        #expect(said == 1, "\(run.stderr)")
        #expect(run.stderr.contains("polls not made") || run.stderr.contains("poll not made"))
        // Then: no URL was reported anything but up, and every one was polled up in the end.
        let lines = run.stdout.split(separator: "\n")
        #expect(!lines.isEmpty)
        #expect(lines.allSatisfy { $0.contains(#""state":"up""#) }, "\(run.stdout)")
        #expect(!run.stdout.contains("\"error_count\":1"))
        let up = Set(urls.filter { url in run.stdout.contains("\"url\":\(url)") })
        #expect(up.count == 40, "\(40 - up.count) URLs never polled up")
    }
}
