import Foundation
import Testing

/// The built `urlpoll` binary, run as a user runs it, against the demo site on loopback.
@Suite(.timeLimit(.minutes(2))) struct CLITests {
    @Test func once_pollsEveryURL_printsTheSeedsBlock_andExits1WhenOneFails() async throws {
        let hanging = try HangingListener()
        try await withDemoSite { (base) async throws in
            let script = try TemporaryScript(
                """
                pollers = 2
                timeout = 0.5
                urls = { "\(base)/healthy", "\(base)/failing", "\(hanging.url)/", "http://127.0.0.1:\(try closedPort())/" }
                """)
            let result = try await CLIProcess.run(["once", script.path])
            #expect(result.status == 1)
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "Current state:")
            #expect(lines.contains(" \(base)/healthy 200 OK"))
            #expect(lines.contains(" \(base)/failing 500 Internal Server Error"))
            #expect(lines.contains(" \(hanging.url)/ timeout"))
            #expect(lines.contains { $0.hasSuffix(" refused") })
            #expect(Array(lines.dropFirst()) == Array(lines.dropFirst()).sorted())
        }
    }

    @Test func once_whenEveryURLIsUp_exits0_andPrintsJSONLines() async throws {
        try await withDemoSite { (base) async throws in
            let script = try TemporaryScript("urls = { \"\(base)/healthy\", \"\(base)/redirect\" }")
            let result = try await CLIProcess.run(["once", script.path, "--format", "json"])
            #expect(result.status == 0)
            let lines = try result.stdout.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
            // Then: a change event per URL as its first result arrives, then the report, in URL order.
            let changes = lines.filter { $0["event"] as? String == "change" }
            let reports = lines.filter { $0["event"] as? String == "report" }
            #expect(changes.count == 2)
            #expect(changes.allSatisfy { $0["prev_status"] is NSNull && $0["state"] as? String == "up" })
            #expect(Array(lines.suffix(2)).map { $0["event"] as? String } == ["report", "report"])
            #expect(reports.map { $0["url"] as? String } == ["\(base)/healthy", "\(base)/redirect"])
            #expect(reports.allSatisfy { $0["ok"] as? Bool == true && $0["state"] as? String == "up" })
            #expect(reports.allSatisfy { $0["code"] as? Int == 200 && $0["error_count"] as? Int == 0 })
        }
    }

    /// A URL's credentials are sent as Basic auth, and its password is shown as `xxxxx` in every output:
    /// `check`, the default report, `--format json` (url and name), the logs and the hooks' `s.url`.
    @Test func check_redactsCredentials_everywhereAURLIsPrinted() async throws {
        let server = try RecordingServer { request in
            request.header("Authorization") == ["Basic cHJvYmU6c2VjcmV0LXB3"]
                ? [.ok(request)] : [.ok(request, body: "", status: "401 Unauthorized")]
        }
        let url = "http://probe:secret-pw@127.0.0.1:\(server.port)/status"
        let redacted = "http://probe:xxxxx@127.0.0.1:\(server.port)/status"
        let plain = try TemporaryScript("urls = { \"\(url)\" }")
        let hooked = try TemporaryScript(
            "urls = { \"\(url)\" }\nfunction report(s) print(\"hook \" .. s.url .. \" \" .. s.name) end")
        let runs = [
            try await CLIProcess.run(["check", plain.path]),
            try await CLIProcess.run(["once", plain.path]),
            try await CLIProcess.run(["once", plain.path, "--format", "json"]),
            try await CLIProcess.run(["once", hooked.path]),
        ]
        for run in runs {
            #expect(run.status == 0, "\(run)")
            #expect(!run.stdout.contains("secret-pw") && !run.stderr.contains("secret-pw"), "\(run)")
            #expect(run.stdout.contains(redacted), "\(run)")
        }
        #expect(runs[1].stdout.contains(" \(redacted) 200 OK"))
        #expect(
            runs[2].stdout.contains("\"url\":\"\(redacted.replacingOccurrences(of: "/", with: "\\/"))\"")
                || runs[2].stdout.contains("\"url\":\"\(redacted)\""))
        #expect(runs[3].stdout.contains("hook \(redacted) \(redacted)"))
    }

    @Test func check_whenTheScriptIsBad_exits2_withFileLineOnStandardError() async throws {
        let script = try TemporaryScript("urls = { \"http://127.0.0.1/\" }\npollers = 0\n")
        let result = try await CLIProcess.run(["check", script.path])
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(
            result.stderr
                == "urlpoll: \(script.path):2: setting 'pollers' must be an integer from 1 to 10000 (got number 0)\n")
    }

    /// Issue 14 (#13): `check` failed a script that `run --data` accepts, one calling `urlpoll.history` at
    /// its top level, with Lua's stack traceback after the file:line message. `check` reads an empty
    /// history, and a script's error there is its file:line message alone.
    @Test func check_acceptsUrlpollHistoryAtTheTopLevel_andAnErrorHasNoTraceback() async throws {
        let script = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/a" }
            local h = urlpoll.history("http://127.0.0.1:9/a", 60)
            assert(h.polls == 0 and h.uptime == nil and #h.changes == 0)
            """)
        let result = try await CLIProcess.run(["check", script.path])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("\(script.path): OK\n"))
        #expect(result.stderr.isEmpty)

        let failing = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/a" }
            local function f() error("boom") end
            f()
            """)
        let failed = try await CLIProcess.run(["check", failing.path])
        #expect(failed.status == 2)
        #expect(failed.stderr == "urlpoll: \(failing.path):2: boom\n")
    }

    /// Issue 14 (#4): a script with no URL is refused (exit 2), as Gatus refuses a configuration without
    /// endpoints; the message said only `'urls' is empty`. It says what to write, and why the list is empty
    /// when the entries were written as a map.
    @Test(arguments: [
        (
            "urls = {}",
            "1: 'urls' is empty: list at least one URL to poll, as urls = { \"http://127.0.0.1:8080/\" } (a variable that is not set adds nothing to the list)"
        ),
        (
            "urls = { shop_url }",
            "1: 'urls' is empty: list at least one URL to poll, as urls = { \"http://127.0.0.1:8080/\" } (a variable that is not set adds nothing to the list)"
        ),
        (
            "urls = { api = \"http://127.0.0.1:9/\" }",
            "1: 'urls' is empty: its entries have keys (such as \"api\"), and urls is a list: write urls = { \"http://127.0.0.1:8080/\", { url = \"http://127.0.0.1:8080/api\", name = \"api\" } }"
        ),
        (
            "urls = function() return {} end",
            "1: the 'urls' function returned no URLs: list at least one URL to poll, as urls = { \"http://127.0.0.1:8080/\" } (a variable that is not set adds nothing to the list)"
        ),
    ])
    func check_aScriptWithNoURL_isRefused_sayingWhatToWrite(text: String, message: String) async throws {
        let script = try TemporaryScript(text)
        let result = try await CLIProcess.run(["check", script.path])
        #expect(result.status == 2)
        #expect(result.stderr == "urlpoll: \(script.path):\(message)\n")
    }

    @Test func check_listsSettingsHooksAndURLs() async throws {
        let script = try TemporaryScript(
            """
            poll_interval = 30
            urls = { "http://127.0.0.1/a", { url = "http://127.0.0.1/b", method = "GET", expect = "2xx" } }
            function backoff(r) return 1 end
            """)
        let result = try await CLIProcess.run(["check", script.path])
        #expect(result.status == 0)
        #expect(
            result.stdout == """
                \(script.path): OK
                settings: pollers=2 poll_interval=30 status_interval=10 error_backoff=10 timeout=10 method=HEAD
                hooks: backoff=\(script.path):3 report=default (seed's block)
                urls (2):
                 http://127.0.0.1/a
                 http://127.0.0.1/b [method=GET expect=200-299]

                """)
    }

    @Test func check_listsEachKindsOwnOptions_andTheMetricSet() async throws {
        let script = try TemporaryScript(
            """
            metrics = "full"
            urls = {
              { url = "tcp://127.0.0.1:6379", send = "PING\\r\\n" },
              { url = "tls://127.0.0.1:465", tls = { verify = false, server_name = "mail.test", cert_expiry = 14 } },
              { url = "dns://127.0.0.1/gone.test?type=A", expect = { "NXDOMAIN" } },
            }
            """)
        let result = try await CLIProcess.run(["check", script.path])
        #expect(result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines[1].hasSuffix(" method=HEAD metrics=full"), "\(lines[1])")
        #expect(lines.contains(" tcp://127.0.0.1:6379 [send=6 bytes]"), "\(result.stdout)")
        #expect(
            lines.contains(" tls://127.0.0.1:465 [tls=verify=false,server_name=mail.test,cert_expiry=14]"),
            "\(result.stdout)")
        #expect(lines.contains(" dns://127.0.0.1/gone.test?type=A [expect=NXDOMAIN]"), "\(result.stdout)")
    }

    @Test func run_pollsAndReportsOnEveryTick_andStopsCleanlyOnSIGINTWithALastReport() async throws {
        try await withDemoSite { (base) async throws in
            let script = try TemporaryScript(
                """
                status_interval = 0.2
                poll_interval = 0.1
                urls = { "\(base)/healthy", "\(base)/failing" }
                """)
            let process = try CLIProcess(["run", script.path])
            try await process.waitForOutput("Current state:", count: 2)
            let start = ContinuousClock.now
            process.signal(SIGINT)
            let status = await process.wait()
            #expect(status == 0)
            #expect(ContinuousClock.now - start < .seconds(5))
            let blocks = process.stdout.components(separatedBy: "Current state:\n").dropFirst()
            #expect(blocks.count >= 3)
            #expect(blocks.last == " \(base)/failing 500 Internal Server Error\n \(base)/healthy 200 OK\n")
        }
    }

    @Test func run_passesArgumentsAfterTheTerminatorToTheScript() async throws {
        let script = try TemporaryScript(
            "urls = { urlpoll.args[1] }\nassert(urlpoll.args[2] == \"second\")\n")
        let result = try await CLIProcess.run(["check", script.path, "--", "http://127.0.0.1/from-args", "second"])
        #expect(result.status == 0)
        #expect(result.stdout.contains(" http://127.0.0.1/from-args\n"))
    }

    @Test func demo_pollsItsOwnSite_showsUpAndDownPages_andStopsOnSIGINT() async throws {
        let process = try CLIProcess(["demo"])
        try await process.waitForOutput("DOWN /failing")
        try await process.waitForOutput("up   /healthy")
        process.signal(SIGINT)
        #expect(await process.wait() == 0)
        #expect(process.stdout.hasPrefix("urlpoll demo: polling the demo site at http://127.0.0.1:"))
    }

    @Test func help_explainsTheCommands() async throws {
        let result = try await CLIProcess.run(["--help"])
        #expect(result.status == 0)
        for command in ["run", "check", "once", "demo"] {
            #expect(result.stdout.contains("  \(command) "), "\(command) missing from --help")
        }
    }
}
