import Foundation
import Testing

/// Signals, reload and restart, on the built binary as a child process.
@Suite(.timeLimit(.minutes(2))) struct LifecycleTests {
    @Test func sigterm_withARequestInFlight_cancelsIt_printsALastReport_andExits0Promptly() async throws {
        let hanging = try HangingListener()
        try await withDemoSite { (base) async throws in
            let script = try TemporaryScript(
                """
                status_interval = 0.2
                timeout = 60
                urls = { "\(base)/healthy", "\(hanging.url)/" }
                """)
            let process = try CLIProcess(["run", script.path])
            // Once a report shows the healthy page's poll (a busy machine may tick before it lands).
            try await process.waitForOutput(" \(base)/healthy 200 OK\n", count: 1)
            let start = ContinuousClock.now
            process.signal(SIGTERM)
            let status = await process.wait()
            #expect(status == 0)
            #expect(ContinuousClock.now - start < .seconds(5))
            #expect(process.stdout.hasSuffix("Current state:\n \(base)/healthy 200 OK\n"))
        }
    }

    @Test func restart_withState_resumesErrorCounts_withoutRefiringOnChange() async throws {
        try await withDemoSite { (base) async throws in
            let state = try TemporaryScript("", name: "state.json")
            try FileManager.default.removeItem(atPath: state.path)
            let script = try TemporaryScript(
                """
                status_interval = 0.1
                poll_interval = 0.05
                error_backoff = 0
                urls = { "\(base)/failing" }
                function on_change(s, prev) print("CHANGE " .. s.status) end
                function report(s) print("REPORT " .. s.error_count) end
                """)
            // Given: a first run that saw the URL fail several times, then died without warning.
            let first = try CLIProcess(["run", script.path, "--state", state.path])
            try await first.waitForOutput("REPORT", count: 3)
            first.signal(SIGKILL)
            _ = await first.wait()
            #expect(first.stdout.components(separatedBy: "CHANGE 500 Internal Server Error").count - 1 == 1)
            let saved = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state.path)))
                    as? [String: Any])
            let savedCount = try #require((saved["states"] as? [[String: Any]])?.first?["error_count"] as? Int)
            #expect(savedCount >= 1)

            // When: it starts again with the same state file.
            let second = try CLIProcess(["run", script.path, "--state", state.path])
            try await second.waitForOutput("REPORT", count: 3)
            second.signal(SIGINT)
            #expect(await second.wait() == 0)

            // Then: no change is announced, and the count went on from where it was: never back to 0 (a
            // busy machine may tick before the first poll lands, so the first report may still show it).
            #expect(!second.stdout.contains("CHANGE"))
            let counts = second.stdout.split(separator: "\n").filter { $0.hasPrefix("REPORT ") }.compactMap {
                Int($0.dropFirst(7))
            }
            #expect(counts.allSatisfy { $0 >= savedCount })
            #expect(try #require(counts.last) > savedCount)
        }
    }

    @Test func start_withACorruptStateFile_warns_andRunsAnyway() async throws {
        try await withDemoSite { (base) async throws in
            let state = try TemporaryScript("{\"version\":1,\"states\":[{\"url\":", name: "state.json")
            let script = try TemporaryScript("status_interval = 0.1\nurls = { \"\(base)/healthy\" }\n")
            let process = try CLIProcess(["run", script.path, "--state", state.path])
            try await process.waitForOutput("Current state:")
            process.signal(SIGINT)
            #expect(await process.wait() == 0)
            #expect(process.stderr.contains("ignoring the state file: \(state.path) is not a urlpoll state file"))
        }
    }

    @Test func sighup_reloadsAValidScript_andKeepsTheOldOneOnError() async throws {
        try await withDemoSite { (base) async throws in
            let script = try TemporaryScript("status_interval = 0.1\nurls = { \"\(base)/healthy\" }\n")
            let process = try CLIProcess(["run", script.path])
            try await process.waitForOutput("Current state:")

            try "urls = { oops }\n".write(toFile: script.path, atomically: true, encoding: .utf8)
            process.signal(SIGHUP)
            try await process.waitForStderr("reload failed, still running the previous script")
            #expect(
                process.stderr.contains(
                    "reload failed, still running the previous script: \(script.path):1: 'urls' is empty"))

            try "status_interval = 0.1\nurls = { \"\(base)/failing\" }\n".write(
                toFile: script.path, atomically: true, encoding: .utf8)
            process.signal(SIGHUP)
            try await process.waitForOutput(" \(base)/failing 500 Internal Server Error")
            process.signal(SIGINT)
            #expect(await process.wait() == 0)
            #expect(process.stdout.hasSuffix("Current state:\n \(base)/failing 500 Internal Server Error\n"))
        }
    }

    @Test func watch_reloadsWhenTheScriptChanges() async throws {
        try await withDemoSite { (base) async throws in
            let script = try TemporaryScript("status_interval = 0.1\nurls = { \"\(base)/healthy\" }\n")
            let process = try CLIProcess(["run", script.path, "--watch"])
            try await process.waitForOutput("Current state:")
            try "status_interval = 0.1\nurls = { \"\(base)/missing\" }\n".write(
                toFile: script.path, atomically: true, encoding: .utf8)
            try await process.waitForOutput(" \(base)/missing 404 Not Found")
            process.signal(SIGINT)
            #expect(await process.wait() == 0)
        }
    }
}
