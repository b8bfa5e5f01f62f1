import AsyncHTTPClient
import Engine
import Foundation
import Logging
import Testing

/// Each provider module in `urlpoll.alerts`, loaded with `require` from the binary, sends through the real
/// dispatcher to a loopback receiver that checks the provider's documented required fields.
@Suite(.timeLimit(.minutes(2))) struct AlertProviderTests {
    static let down = State(
        url: "http://127.0.0.1:9/api", name: "api", status: "500 Internal Server Error", code: 500, health: .down,
        error: "status", detail: "status 500 is not in expect 200-399", errorCount: 3, polls: 5,
        since: 1_795_000_000, checkedAt: 1_795_000_000)
    static let up = State(
        url: "http://127.0.0.1:9/api", name: "api", status: "200 OK", code: 200, health: .up, polls: 6,
        since: 1_795_000_300, checkedAt: 1_795_000_300)

    /// Loads `script` (with the receiver's base URL as `urlpoll.args[1]`), calls its on_change for a
    /// failure and then a recovery, and returns what arrived, in order (one delivery at a time). The
    /// dispatcher runs on the real clock, so `finish()` bounds the wait by its 5 s shutdown grace.
    static func deliver(
        _ script: String, args: [String] = [], logger: Logger = Logger(label: "test"),
        changes: [(State, State?)] = [(down, up), (up, down)],
        drive: (@Sendable (_ host: ScriptHost) async -> Void)? = nil
    ) async throws -> [Receiver.Request] {
        let receiver = Receiver()
        try await receiver.run { base in
            var configuration = AlertDispatcher<ContinuousClock>.Configuration()
            configuration.concurrency = 1
            let client = HTTPProber.makeClient(pollers: 2)
            let dispatcher = AlertDispatcher(
                configuration: configuration, transport: SystemAlertTransport(client: client),
                clock: ContinuousClock(), logger: logger)
            let file = try TemporaryScript(script)
            let host: ScriptHost
            do {
                host = try ScriptHost(path: file.path, args: [base] + args, alerts: dispatcher, logger: logger)
            } catch {
                try await client.shutdown()
                throw error
            }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await dispatcher.run() }
                if let drive {
                    await drive(host)
                } else {
                    for (state, previous) in changes { await host.changed(state, previous: previous) }
                }
                dispatcher.finish()
            }
            try await client.shutdown()
        }
        return receiver.all
    }

    static func object(_ value: Any?) -> [String: Any] { value as? [String: Any] ?? [:] }

    @Test func slack_postsText() async throws {
        let requests = try await Self.deliver(
            """
            local slack = require("urlpoll.alerts.slack").new{ webhook = urlpoll.args[1] .. "/api/slack" }
            urls = { "http://127.0.0.1:9/api" }
            function on_change(s, prev) slack:send(s) end
            """)
        try #require(requests.count == 2)
        #expect(requests.allSatisfy { $0.path == "/api/slack" && $0.contentType == "application/json" })
        #expect(
            requests[0].json?["text"] as? String
                == ":red_circle: api is down: 500 Internal Server Error (status 500 is not in expect 200-399)")
        #expect(requests[1].json?["text"] as? String == ":large_green_circle: api is up: 200 OK")
    }

    @Test func discord_postsContent_withoutMentions() async throws {
        let requests = try await Self.deliver(
            """
            local discord = require("urlpoll.alerts.discord").new{ webhook = urlpoll.args[1] .. "/api/discord" }
            urls = { "http://127.0.0.1:9/api" }
            function on_change(s, prev) discord:send(s) end
            """)
        try #require(requests.count == 2)
        let content = try #require(requests[0].json?["content"] as? String)
        #expect(content.hasPrefix("🔴 api is down: 500"))
        #expect(content.count <= 2000)
        #expect(requests[0].contentType == "application/json")
        #expect((Self.object(requests[0].json?["allowed_mentions"])["parse"] as? [Any])?.isEmpty == true)
        #expect((requests[1].json?["content"] as? String)?.hasPrefix("✅ api is up") == true)
    }

    @Test func teams_postsAnAdaptiveCard() async throws {
        let requests = try await Self.deliver(
            """
            local teams = require("urlpoll.alerts.teams").new{ webhook = urlpoll.args[1] .. "/api/teams" }
            urls = { "http://127.0.0.1:9/api" }
            function on_change(s, prev) teams:send(s) end
            """)
        try #require(requests.count == 2)
        let message = try #require(requests[0].json)
        #expect(message["type"] as? String == "message")
        let attachment = try #require((message["attachments"] as? [[String: Any]])?.first)
        #expect(attachment["contentType"] as? String == "application/vnd.microsoft.card.adaptive")
        let card = Self.object(attachment["content"])
        #expect(card["type"] as? String == "AdaptiveCard")
        #expect(card["version"] as? String == "1.4")
        let body = try #require(card["body"] as? [[String: Any]])
        #expect(body.first?["type"] as? String == "TextBlock")
        #expect(body.first?["text"] as? String == "api is down")
    }

    @Test func pagerduty_triggersAndResolves_withOneStableDedupKey() async throws {
        let requests = try await Self.deliver(
            """
            local pd = require("urlpoll.alerts.pagerduty").new{
              routing_key = "R0UTINGKEY", url = urlpoll.args[1] .. "/api/v2/enqueue" }
            urls = { "http://127.0.0.1:9/api" }
            function on_change(s, prev) pd:send(s) end
            """)
        try #require(requests.count == 2)
        let trigger = try #require(requests[0].json)
        let resolve = try #require(requests[1].json)
        #expect(trigger["routing_key"] as? String == "R0UTINGKEY")
        #expect(trigger["event_action"] as? String == "trigger")
        #expect(trigger["dedup_key"] as? String == "urlpoll:http://127.0.0.1:9/api")
        let payload = Self.object(trigger["payload"])
        #expect((payload["summary"] as? String)?.hasPrefix("api is down: 500 Internal Server Error") == true)
        #expect(payload["source"] as? String == "http://127.0.0.1:9/api")
        #expect(payload["severity"] as? String == "critical")
        #expect(payload["timestamp"] as? String == "2026-11-18T11:06:40Z")
        #expect(resolve["routing_key"] as? String == "R0UTINGKEY")
        #expect(resolve["event_action"] as? String == "resolve")
        #expect(resolve["dedup_key"] as? String == trigger["dedup_key"] as? String)
        #expect(resolve["payload"] == nil)
    }

    @Test func opsgenie_createsThenClosesByAlias() async throws {
        let requests = try await Self.deliver(
            """
            local og = require("urlpoll.alerts.opsgenie").new{ api_key = "k3y", api = urlpoll.args[1] .. "/api", priority = "P2" }
            urls = { "http://127.0.0.1:9/api" }
            function on_change(s, prev) og:send(s) end
            """)
        try #require(requests.count == 2)
        #expect(requests.allSatisfy { $0.headers["authorization"] == "GenieKey k3y" })
        #expect(requests[0].path == "/api/v2/alerts")
        let alert = try #require(requests[0].json)
        #expect(alert["message"] as? String == "api is down")
        #expect(alert["alias"] as? String == "urlpoll:http://127.0.0.1:9/api")
        #expect(alert["priority"] as? String == "P2")
        #expect(requests[1].path == "/api/v2/alerts/urlpoll%3Ahttp%3A%2F%2F127.0.0.1%3A9%2Fapi/close")
        #expect(requests[1].query == "identifierType=alias")
        #expect(requests[1].json?["source"] as? String == "urlpoll")
    }

    @Test func telegram_sendsMessageToTheChat() async throws {
        let requests = try await Self.deliver(
            """
            local tg = require("urlpoll.alerts.telegram").new{ token = "123:abc", chat_id = -100123, api = urlpoll.args[1] .. "/api" }
            urls = { "http://127.0.0.1:9/api" }
            function on_change(s, prev) tg:send(s) end
            """)
        try #require(requests.count == 2)
        #expect(requests.allSatisfy { $0.path == "/api/bot123:abc/sendMessage" })
        #expect(requests[0].json?["chat_id"] as? String == "-100123")
        #expect((requests[0].json?["text"] as? String)?.hasPrefix("🔴 api is down") == true)
    }

    @Test func ntfy_publishesJSONToTheTopic() async throws {
        let requests = try await Self.deliver(
            """
            local ntfy = require("urlpoll.alerts.ntfy").new{ topic = "ops", server = urlpoll.args[1] .. "/api/ntfy", token = "tk_1" }
            urls = { "http://127.0.0.1:9/api" }
            function on_change(s, prev) ntfy:send(s) end
            """)
        try #require(requests.count == 2)
        #expect(requests[0].path == "/api/ntfy/")
        #expect(requests[0].headers["authorization"] == "Bearer tk_1")
        let message = try #require(requests[0].json)
        #expect(message["topic"] as? String == "ops")
        #expect(message["title"] as? String == "api is down")
        #expect(message["priority"] as? Int == 4)
        #expect(message["tags"] as? [String] == ["rotating_light"])
        #expect(requests[1].json?["tags"] as? [String] == ["white_check_mark"])
    }

    @Test func gotify_postsAMessageWithTheAppToken() async throws {
        let requests = try await Self.deliver(
            """
            local gotify = require("urlpoll.alerts.gotify").new{ server = urlpoll.args[1] .. "/api/", token = "AppT0ken" }
            urls = { "http://127.0.0.1:9/api" }
            function on_change(s, prev) gotify:send(s) end
            """)
        try #require(requests.count == 2)
        #expect(requests.allSatisfy { $0.path == "/api/message" && $0.headers["x-gotify-key"] == "AppT0ken" })
        #expect(requests[0].json?["title"] as? String == "api is down")
        #expect((requests[0].json?["message"] as? String)?.hasPrefix("api is down: 500") == true)
        #expect(requests[0].json?["priority"] as? Int == 8)
    }

    @Test func webhook_fillsTheTemplate() async throws {
        let requests = try await Self.deliver(
            """
            local hook = require("urlpoll.alerts.webhook").new{ url = urlpoll.args[1] .. "/api/{{kind}}",
              body = { summary = "{{name}} went {{kind}} ({{status}})", labels = { url = "{{url}}" } },
              headers = { ["X-Token"] = "t" } }
            urls = { "http://127.0.0.1:9/api" }
            function on_change(s, prev) hook:send(s) end
            """)
        try #require(requests.count == 2)
        #expect(requests.map(\.path) == ["/api/down", "/api/up"])
        #expect(requests[0].headers["x-token"] == "t")
        #expect(requests[0].json?["summary"] as? String == "api went down (500 Internal Server Error)")
        #expect(Self.object(requests[0].json?["labels"])["url"] as? String == "http://127.0.0.1:9/api")
        #expect(requests[1].json?["summary"] as? String == "api went up (200 OK)")
    }

    @Test func email_pipesAnRFC5322MessageToSendmail() async throws {
        let mailbox = try TemporaryScript("", name: "mailbox")
        let sendmail = try TemporaryScript(
            "#!/bin/sh\necho \"ARGS $*\" >> \(mailbox.path)\ncat >> \(mailbox.path)\n", name: "sendmail")
        chmod(sendmail.path, 0o755)
        _ = try await Self.deliver(
            """
            local mail = require("urlpoll.alerts.email").new{
              to = { "ops@example.org", "oncall@example.org" }, from = "urlpoll@example.org", sendmail = { urlpoll.args[2] } }
            urls = { "http://127.0.0.1:9/api" }
            function on_change(s, prev) mail:send(s) end
            """, args: [sendmail.path], changes: [(Self.down, Self.up)])
        let message = try String(contentsOfFile: mailbox.path, encoding: .utf8)
        let lines = message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "ARGS -t -i")
        #expect(lines[1] == "From: urlpoll@example.org")
        #expect(lines[2] == "To: ops@example.org, oncall@example.org")
        #expect(lines[3] == "Subject: [urlpoll] api is down")
        #expect(lines[4] == "Date: Wed, 18 Nov 2026 11:06:40 +0000")
        #expect(lines.contains("Content-Type: text/plain; charset=utf-8"))
        let blank = try #require(lines.firstIndex(of: ""))
        #expect(lines[blank + 1].hasPrefix("api is down: 500 Internal Server Error"))
    }

    @Test func email_encodesANonASCIISubject() async throws {
        let (logger, log) = RecordingLogHandler.make()
        let (host, _) = try loadHost(
            """
            local email = require "urlpoll.alerts.email"
            urls = { "http://127.0.0.1:9/api" }
            urlpoll.log("info", email.header("Café ☕"), email.header("plain\\r\\nBcc: x@y"))
            """, logger: logger)
        _ = host
        #expect(log.all == ["info: =?UTF-8?B?Q2Fmw6kg4piV?= plain Bcc: x@y"])
    }

    /// The README's and RECIPES.md's PagerDuty recipe, as written there (with the enqueue URL and the
    /// maintenance file pointed at the test's own).
    @Test func recipe_pagesAfter3Of5_resolvesOnRecovery_andKeepsQuietInMaintenance() async throws {
        let flag = try TemporaryScript("", name: "maintenance")
        let recipe = """
            local alerting = require "urlpoll.alerting"
            local pd = require("urlpoll.alerts.pagerduty").new{ routing_key = "R0UTINGKEY", url = urlpoll.args[1] .. "/api/pd" }
            on_result = alerting.policy{ notify = pd, threshold = alerting.n_of_m(3, 5),
              flap = { changes = 4, window = 900 }, maintenance = { "02:00-03:00", file = urlpoll.args[2] },
            }.on_result
            urls = { "http://127.0.0.1:9/a", "http://127.0.0.1:9/b" }
            """
        // a: -+--  then +++ (3 of 5 at its 4th poll; recovers at the 3rd success). b fails 3 times while
        // the maintenance file exists: no page.
        let requests = try await Self.deliver(recipe, args: [flag.path + ".absent"]) { host in
            await Self.feed(host, url: "http://127.0.0.1:9/a", pattern: "-+--+++")
        }
        #expect(requests.map { $0.json?["event_action"] as? String } == ["trigger", "resolve"])
        #expect(requests.allSatisfy { $0.json?["dedup_key"] as? String == "urlpoll:http://127.0.0.1:9/a" })

        let quiet = try await Self.deliver(recipe, args: [flag.path]) { host in
            await Self.feed(host, url: "http://127.0.0.1:9/b", pattern: "---")
        }
        #expect(quiet.isEmpty)
    }

    /// Polls of `url`, one a minute from 12:00 UTC: "+" succeeds, "-" fails (500).
    static func feed(_ host: ScriptHost, url: String, pattern: String) async {
        var previous: State?
        for (i, c) in pattern.enumerated() {
            let ok = c == "+"
            let at =
                1_795_000_000.0 - 1_795_000_000.0.truncatingRemainder(dividingBy: 86_400) + 12 * 3600 + Double(i) * 60
            let state = State(
                url: url, name: url, status: ok ? "200 OK" : "500 Internal Server Error", code: ok ? 200 : 500,
                health: ok ? .up : .down, errorCount: ok ? 0 : (previous?.errorCount ?? 0) + 1, polls: i + 1,
                since: at, checkedAt: at)
            let observer: any StateObserver = host
            await observer.polled(state, previous: previous)
            previous = state
        }
    }

    @Test func provider_whenAnOptionIsMissing_failsAtTheScriptsLine() throws {
        let script = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/api" }
            local pd = require("urlpoll.alerts.pagerduty").new{ routing_key = os.getenv("URLPOLL_NO_SUCH_VARIABLE") }
            """)
        let error = #expect(throws: ScriptError.self) {
            try ScriptHost(path: script.path, logger: Logger(label: "test"))
        }
        #expect(
            error?.message
                == "\(script.path):2: urlpoll.alerts.pagerduty: option 'routing_key' must be a non-empty string (got nil)"
        )
    }
}
