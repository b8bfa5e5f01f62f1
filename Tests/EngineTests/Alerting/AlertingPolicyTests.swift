import Engine
import Foundation
import Logging
import Testing

/// `require "urlpoll.alerting"`: thresholds, recoveries, flaps, reminders, dependencies, maintenance
/// windows and grouping, driven through the real on_result and report hooks with states whose
/// `checked_at` the test sets, so time is exact.
@Suite(.timeLimit(.minutes(2))) struct AlertingPolicyTests {
    /// One poll: which URL, whether it succeeded, and when (seconds since the epoch).
    struct Poll {
        let url: String
        let ok: Bool
        let at: Double
        init(_ url: String, _ ok: Bool, at: Double) {
            self.url = url
            self.ok = ok
            self.at = at
        }
    }

    static let base = 1_795_000_000.0

    /// The on_result path, as the monitor calls it (through the protocol: StateObserver's default
    /// `polled` would otherwise win overload resolution on the concrete actor).
    static func polled(_ observer: any StateObserver, _ state: State, previous: State?) async {
        await observer.polled(state, previous: previous)
    }

    /// Loads a script whose `policy` (built from `options`) logs each event as "kind: text", feeds it
    /// `polls` through on_result, and returns the log.
    static func run(_ options: String, _ polls: [Poll], urls: [String] = ["api"], extra: String = "") async throws
        -> [String]
    {
        let (logger, log) = RecordingLogHandler.make()
        let list = urls.map { "{ url = \"http://127.0.0.1:9/\($0)\", name = \"\($0)\" }" }.joined(separator: ", ")
        let (host, _) = try loadHost(
            """
            local alerting = require "urlpoll.alerting"
            urls = { \(list) }
            policy = alerting.policy{ notify = function(e) urlpoll.log("info", e.kind .. ":", e.text) end, \(options) }
            on_result = policy.on_result
            \(extra)
            """, logger: logger)
        var last: [String: State] = [:]
        for poll in polls {
            let previous = last[poll.url]
            let errors = poll.ok ? 0 : (previous?.errorCount ?? 0) + 1
            let state = State(
                url: "http://127.0.0.1:9/\(poll.url)", name: poll.url,
                status: poll.ok ? "200 OK" : "500 Internal Server Error", code: poll.ok ? 200 : 500,
                health: poll.ok ? .up : .down, errorCount: errors, polls: (previous?.polls ?? 0) + 1,
                since: Self.base + poll.at, checkedAt: Self.base + poll.at)
            await Self.polled(host, state, previous: previous)
            last[poll.url] = state
        }
        return log.all
    }

    static func polls(_ url: String, _ pattern: String, every step: Double = 10, from start: Double = 0) -> [Poll] {
        pattern.enumerated().map { i, c in Poll(url, c == "+", at: start + Double(i) * step) }
    }

    static let downText = "api is down: 500 Internal Server Error"

    @Test func after_alertsOnTheNthFailureInARow_andRecoversOnTheFirstSuccess() async throws {
        // The outage is counted from its first failed poll (t=30), not from the alert (t=50).
        let log = try await Self.run("threshold = alerting.after(3)", Self.polls("api", "--+---+-"))
        #expect(log == ["info: down: \(Self.downText)", "info: up: api is up: 200 OK after 30s down"])
    }

    @Test func nOfM_alertsWhenNOfTheLastMFail_evenWithSuccessesBetween() async throws {
        // -+-+- has 3 failures in 5 polls but never 3 in a row; the next success leaves 2 of 5.
        let log = try await Self.run("threshold = alerting.n_of_m(3, 5)", Self.polls("api", "-+-+-+"))
        #expect(log == ["info: down: \(Self.downText)", "info: up: api is up: 200 OK after 10s down"])
        let strict = try await Self.run("threshold = alerting.after(3)", Self.polls("api", "-+-+-+"))
        #expect(strict.isEmpty)
    }

    @Test func nOfM_staysDownUntilFewerThanNOfTheLastMFailed() async throws {
        // ---++ still has 3 failures in its last 5; the third success clears it.
        let log = try await Self.run("threshold = alerting.n_of_m(3, 5)", Self.polls("api", "---+++"))
        #expect(log == ["info: down: \(Self.downText)", "info: up: api is up: 200 OK after 50s down"])
    }

    @Test func recovery_false_sendsNoUpEvent() async throws {
        let log = try await Self.run("recovery = false", Self.polls("api", "-+-+"))
        #expect(log == ["info: down: \(Self.downText)", "info: down: \(Self.downText)"])
    }

    @Test func flap_holdsAlertsWhileAURLFlaps_andSendsOneSummaryWhenItSettles() async throws {
        // More than 2 changes in 60 s is flapping: the third change (t=30) starts it; at t=130 the
        // changes have aged out and one summary says how it ended.
        let polls = Self.polls("api", "-+-+-+-") + [Poll("api", false, at: 130)]
        let log = try await Self.run("flap = { changes = 2, window = 60 }", polls)
        #expect(
            log == [
                "info: down: \(Self.downText)", "info: up: api is up: 200 OK after 10s down",
                "info: down: \(Self.downText)",
                "info: settled: api stopped flapping and is down: 500 Internal Server Error (4 changes while flapping)",
            ])
    }

    @Test func remind_repeatsEveryN_atMostMTimes() async throws {
        let polls = [0, 100, 300, 500, 600, 900].map { Poll("api", false, at: $0) } + [Poll("api", true, at: 1000)]
        let log = try await Self.run("remind = { every = 300, max = 2 }", polls)
        #expect(
            log == [
                "info: down: \(Self.downText)",
                "info: reminder: api is still down: 500 Internal Server Error for 5m 0s",
                "info: reminder: api is still down: 500 Internal Server Error for 10m 0s",
                "info: up: api is up: 200 OK after 16m 40s down",
            ])
    }

    @Test func dependsOn_holdsAlertsWhileTheParentIsDown() async throws {
        let polls = [
            Poll("router", false, at: 0), Poll("api", false, at: 1), Poll("router", true, at: 2),
            Poll("api", true, at: 3), Poll("api", false, at: 4),
        ]
        let log = try await Self.run("depends_on = { api = \"router\" }", polls, urls: ["router", "api"])
        #expect(
            log == [
                "info: down: router is down: 500 Internal Server Error", "info: up: router is up: 200 OK after 2s down",
                "info: down: \(Self.downText)",
            ])
    }

    @Test func maintenance_holdsAlertsInsideAWindow_butNotRecoveriesOfEarlierAlerts() async throws {
        let from = Self.base + 100
        let polls = [
            Poll("api", false, at: 150), Poll("api", true, at: 160), Poll("api", false, at: 170),
            Poll("api", false, at: 250),  // the window has ended: the outage is announced
            Poll("api", true, at: 260), Poll("api", false, at: 300),
            Poll("api", true, at: 450),  // recovers inside the second window: still announced
        ]
        let log = try await Self.run(
            "maintenance = { { from = \(from), to = \(from + 100) }, { from = \(from + 300), to = \(from + 400) } }",
            polls)
        #expect(
            log == [
                "info: down: \(Self.downText)", "info: up: api is up: 200 OK after 1m 30s down",
                "info: down: \(Self.downText)", "info: up: api is up: 200 OK after 2m 30s down",
            ])
    }

    @Test func maintenance_dailyWindowsWrapMidnight_andAFileThatExistsCounts() async throws {
        let flag = try TemporaryScript("", name: "maintenance")
        let day = 86_400.0 * 20_000
        let (logger, log) = RecordingLogHandler.make()
        _ = try loadHost(
            """
            local alerting = require "urlpoll.alerting"
            urls = { "http://127.0.0.1:9/" }
            local daily = alerting.maintenance{ "23:00-01:00" }
            urlpoll.log("info", daily(\(day) + 23.5 * 3600), daily(\(day) + 0.5 * 3600), daily(\(day) + 2 * 3600))
            local file = alerting.maintenance{ file = "\(flag.path)" }
            local missing = alerting.maintenance{ file = "\(flag.path).absent" }
            urlpoll.log("info", file(0), missing(0))
            """, logger: logger)
        #expect(log.all == ["info: true true false", "info: true false"])
    }

    @Test func group_sendsOneEventPerTick_forEveryURLThatWentDown() async throws {
        let (logger, log) = RecordingLogHandler.make()
        let (host, _) = try loadHost(
            """
            local alerting = require "urlpoll.alerting"
            urls = { "http://127.0.0.1:9/a", "http://127.0.0.1:9/b", "http://127.0.0.1:9/c" }
            local policy = alerting.policy{ group = true,
              notify = function(e) urlpoll.log("info", e.count, e.text) end }
            on_result = policy.on_result
            report = policy.report
            """, logger: logger)
        func state(_ name: String, _ ok: Bool) -> State {
            State(
                url: "http://127.0.0.1:9/\(name)", name: "http://127.0.0.1:9/\(name)",
                status: ok ? "200 OK" : "503 Service Unavailable", code: ok ? 200 : 503, health: ok ? .up : .down,
                errorCount: ok ? 0 : 1, checkedAt: Self.base)
        }
        let down = ["a", "b", "c"].map { state($0, false) }
        for s in down { await Self.polled(host, s, previous: nil) }
        #expect(log.all.isEmpty)
        await host.report(down)
        let up = [state("a", true), state("b", true), down[2]]
        for s in up.prefix(2) { await Self.polled(host, s, previous: nil) }
        await host.report(up)
        #expect(
            log.all == [
                "info: 3 3 URLs are down: http://127.0.0.1:9/a (503 Service Unavailable), "
                    + "http://127.0.0.1:9/b (503 Service Unavailable), http://127.0.0.1:9/c (503 Service Unavailable)",
                "info: 2 2 URLs are up: http://127.0.0.1:9/a (200 OK), http://127.0.0.1:9/b (200 OK)",
            ])
    }

    @Test func policy_whenAnOptionIsWrong_failsAtTheScriptsLine() throws {
        let cases = [
            ("alerting.policy{ notify = 5 }", "notify must be a notifier"),
            (
                "alerting.policy{ notify = print, threshold = alerting.n_of_m(5, 3) }",
                "n_of_m(n, m): n must be at most m (got 5 of 3)"
            ),
            (
                "alerting.policy{ notify = print, remind = { every = -1 } }",
                "remind.every must be a number of seconds >= 0 (got number -1)"
            ),
            (
                "alerting.policy{ notify = print, maintenance = { \"25:00-26:00\" } }",
                "maintenance: '25:00-26:00' has an hour past 24:00"
            ),
            ("alerting.policy{ notify = print, thresold = 3 }", "policy: unknown option 'thresold'"),
        ]
        for (line, expected) in cases {
            let script = try TemporaryScript(
                """
                local alerting = require "urlpoll.alerting"
                urls = { "http://127.0.0.1:9/" }
                local p = \(line)
                """)
            let error = #expect(throws: ScriptError.self) {
                try ScriptHost(path: script.path, logger: Logger(label: "test"))
            }
            let message = error?.message ?? ""
            #expect(message.hasPrefix("\(script.path):3: urlpoll.alerting: "), "\(message)")
            #expect(message.contains(expected), "\(message)")
        }
    }
}
