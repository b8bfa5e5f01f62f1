import Engine
import Foundation
import Logging
import Testing

/// The alerting example scripts, run by the real binary against the demo site, with a real webhook
/// receiver on loopback.
@Suite(.timeLimit(.minutes(2))) struct AlertScriptTests {
    @Test func alertWebhook_postsAfterThreeFailures_andOnRecovery() async throws {
        let receiver = Receiver()
        try await receiver.run { hook in
            try await withDemoSite { (base) async throws in
                // Given: /flapping answers 200 four times, then 503 four times, then 200 again.
                let process = try CLIProcess([
                    "run", "scripts/alert-webhook.lua", "--poll-interval", "0.02", "--error-backoff", "0",
                    "--status-interval", "600", "--", base, hook + "/hook",
                ])
                var arrivals = receiver.arrivals.makeAsyncIterator()
                let down = try #require(await arrivals.next())
                let up = try #require(await arrivals.next())
                process.signal(SIGTERM)
                #expect(await process.wait() == 0)

                // Then: one alert on the third failure, one on recovery, as Slack-style JSON.
                #expect(down.contentType == "application/json")
                #expect(
                    down.json?["text"] as? String
                        == ":red_circle: \(base)/flapping is down: 503 Service Unavailable "
                        + "(status 503 is not in expect 200-399)")
                #expect(
                    up.json?["text"] as? String
                        == ":large_green_circle: \(base)/flapping recovered: 200 OK after 9 polls")
                #expect(receiver.all.count == 2)
            }
        }
    }

    @Test func alertExec_runsTheCommandWhenAURLGoesDown() async throws {
        try await withDemoSite { (base) async throws in
            let log = try TemporaryScript("", name: "alerts.log")
            let command = try TemporaryScript("#!/bin/sh\necho \"$@\" >> \(log.path)\n", name: "alert.sh")
            chmod(command.path, 0o755)
            let result = try await CLIProcess.run(["once", "scripts/alert-exec.lua", "--", base, command.path])
            #expect(result.status == 1)
            #expect(
                try String(contentsOfFile: log.path, encoding: .utf8)
                    == "urlpoll: \(base)/failing is down (500 Internal Server Error)\n")
        }
    }

    @Test func alertExec_whenTheCommandFails_retries_andReportsItUndeliveredAtExit() async throws {
        try await withDemoSite { (base) async throws in
            // `once` exits after the 5 s shutdown grace: attempts at 0, 1 and 3 s, and none after.
            let result = try await CLIProcess.run(["once", "scripts/alert-exec.lua", "--", base, "/bin/false"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("alert attempt 3 failed: /bin/false exited(1); retrying in 4 s"))
            #expect(result.stderr.contains("alert not delivered before shutdown (/bin/false exited(1))"))
        }
    }

    @Test func alertGrouped_sendsOneAlertForManyFailures() async throws {
        let receiver = Receiver()
        try await receiver.run { hook in
            try await withDemoSite { (base) async throws in
                let result = try await CLIProcess.run(["once", "scripts/alert-grouped.lua", "--", base, hook + "/hook"])
                #expect(result.status == 1)
                #expect(receiver.all.count == 1)
                let alert = try #require(receiver.all.first?.json)
                #expect(alert["text"] as? String == "4 of 5 URLs are down")
                #expect(
                    alert["down"] as? [String]
                        == [500, 502, 503, 504].map {
                            "\(base)/status/\($0) (\($0) \(HTTPStatusName.of($0)))"
                        })
            }
        }
    }

    @Test func checkJSON_judgesTheHealthDocument_upDownAndDegraded() async throws {
        try await withDemoSite { (base) async throws in
            let result = try await CLIProcess.run(["once", "scripts/check-json.lua", "--", base])
            #expect(result.status == 1)
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 4)
            #expect(lines[0] == "Current state:")
            #expect(lines[1] == " \(base)/health.json?db=down 200 OK (down: db is down)")
            #expect(lines[2] == " \(base)/health.json?db=up 200 OK")
            #expect(lines[3].hasPrefix(" \(base)/health.json?db=up&delay=1500 200 OK (degraded: slow: "))
            #expect(lines[3].hasSuffix(" ms)"))
        }
    }

    @Test func once_whenOnlyDegraded_exits3() async throws {
        try await withDemoSite { (base) async throws in
            let script = try TemporaryScript(
                """
                urls = { "\(base)/healthy" }
                function check(res) return "degraded", "always" end
                """)
            let result = try await CLIProcess.run(["once", script.path])
            #expect(result.status == 3)
            #expect(result.stdout == "Current state:\n \(base)/healthy 200 OK (degraded: always)\n")
        }
    }

    @Test func retryAfter_waitsWhatTheServerAsks() async throws {
        let host = try ScriptHost(
            path: ScriptExamplesTests.path("retry-after.lua"), args: ["http://127.0.0.1:9"], logger: Logger(label: "t"))
        var limited = Resource(host.config.targets[1])
        limited.record(.status(429, headers: [Header("Retry-After", "42")]), at: 0)
        #expect(await host.delay(for: limited, settings: host.config.settings) == .seconds(42))
        var failing = Resource(host.config.targets[0])
        failing.record(.status(500), at: 0)
        #expect(await host.delay(for: failing, settings: host.config.settings) == .seconds(70))

        try await withDemoSite { (base) async throws in
            let result = try await CLIProcess.run(["once", "scripts/retry-after.lua", "--", base])
            #expect(result.status == 1)
            #expect(result.stdout.contains(" \(base)/ratelimited 429 Too Many Requests\n"))
        }
    }
}
