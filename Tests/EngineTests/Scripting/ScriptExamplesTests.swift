import DemoSite
import Engine
import Foundation
import Logging
import Synchronization
import Testing

/// Every script in scripts/ is checked, and every one that polls is run once against the demo site.
@Suite(.timeLimit(.minutes(2))) struct ScriptExamplesTests {
    static let scripts = packageRoot.appendingPathComponent("scripts")

    static func path(_ name: String) -> String {
        Self.scripts.appendingPathComponent(name).path
    }

    @Test func everyScript_passesCheck() async throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.scripts.path)
            .filter { $0.hasSuffix(".lua") }.sorted()
        #expect(names.count >= 5)
        for name in names {
            let result = try await CLIProcess.run(["check", "scripts/\(name)"])
            #expect(result.status == 0, "\(name): \(result.stderr)")
            #expect(result.stdout.hasPrefix("scripts/\(name): OK\n"))
        }
    }

    /// Issue 14 (#5): the worked example of SCRIPTING.md's History section (scripts/history-alerts.lua),
    /// its `on_change` run against a real `--data` store: the week's uptime is the written polls', the
    /// outage's length the states', and the change that calls the hook (not written yet) is counted once.
    @Test func historyAlertsScript_quotesTheHistory_asSCRIPTINGSays() async throws {
        final class Recorder: AlertSink {
            let alerts = Mutex<[Alert]>([])
            func enqueue(_ alert: Alert) { self.alerts.withLock { $0.append(alert) } }
            var texts: [String] {
                self.alerts.withLock { $0 }.compactMap {
                    guard case .post(_, let body, _) = $0,
                        let json = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
                    else { return nil }
                    return json["text"] as? String
                }
            }
        }
        // Given: a store that wrote, for api, an hour two days ago of 1,000 polls with 8 down (99.2 %), an
        // outage that began 3 hours ago and one 30 hours ago.
        let base = "http://127.0.0.1:9"
        let url = base + "/flapping"
        let folder = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteHistoryStore(directory: folder)
        let now = Date().timeIntervalSince1970
        let key = HistoryKey(url: url)
        var batch = HistoryBatch()
        let hour = Int64(now - 2 * 86_400) / 3_600 * 3_600
        var rollup = Rollup(start: hour)
        rollup.polls = 1_000
        rollup.failures = 8
        batch.hours[key] = [hour: rollup]
        for ago in [30.0, 3.0] {
            batch.changes.append(
                HistoryChange(
                    url: url, at: now - ago * 3_600, from: .up, fromStatus: "200 OK", to: .down,
                    toStatus: "500 Internal Server Error", detail: nil))
        }
        try await store.write(batch)
        let recorder = Recorder()
        let host = try ScriptHost(
            path: Self.path("history-alerts.lua"), args: [base, base + "/hook"], alerts: recorder, history: store,
            logger: Logger(label: "test"))
        let up = State(
            url: url, name: "api", status: "200 OK", code: 200, health: .up, since: now - 86_400, checkedAt: now - 780)
        let down = State(
            url: url, name: "api", status: "500 Internal Server Error", code: 500, health: .down, since: now - 720,
            checkedAt: now - 720)
        let back = State(url: url, name: "api", status: "200 OK", code: 200, health: .up, since: now, checkedAt: now)

        // When: api goes down (a change not written yet), then comes back 12 minutes after it went down.
        await host.changed(down, previous: up)
        await host.changed(back, previous: down)

        // Then: the messages the docs show.
        #expect(
            recorder.texts == [
                "api is down (500 Internal Server Error), 2 times in 24 h",
                "api is back after 12 min down; 99.2 % up this week",
            ])
    }

    @Test func demoScript_isTheOneTheDemoCommandRuns() throws {
        #expect(try String(contentsOfFile: Self.path("demo.lua"), encoding: .utf8) == DemoSite.script)
    }

    @Test func defaultScript_isTheSeed() throws {
        let host = try ScriptHost(path: Self.path("default.lua"), logger: Logger(label: "test"))
        let settings = host.config.settings
        #expect(
            host.config.targets.map(\.url) == [
                "http://www.google.com/", "http://golang.org/", "http://blog.golang.org/",
            ])
        #expect(settings.pollers == 2)
        #expect(settings.pollInterval == .seconds(60))
        #expect(settings.statusInterval == .seconds(10))
        #expect(settings.errorBackoff == .seconds(10))
        #expect(settings.method == "HEAD")
        #expect(!host.config.hasBackoffHook)
    }

    @Test func demoScript_once_showsUpAndDownPages() async throws {
        try await withDemoSite { (base) async throws in
            let result = try await CLIProcess.run(["once", "scripts/demo.lua", "--", base])
            #expect(result.status == 1)
            let lines = result.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ").prefix(2) }
            #expect(lines.contains(["up", "/healthy"]))
            #expect(lines.contains(["DOWN", "/failing"]))
            #expect(lines.contains(["up", "missing"]))
            #expect(lines.contains(["DOWN", "slow"]))
        }
    }

    @Test func backoffScript_backsOffExponentiallyWithJitter_underItsCap() async throws {
        let host = try ScriptHost(path: Self.path("backoff.lua"), logger: Logger(label: "test"))
        let failing = host.config.targets[1]
        var resource = Resource(failing)
        for errors in 1...8 {
            resource.record(.status(500), at: 0)
            let delay = await host.delay(for: resource, settings: host.config.settings)
            let ceiling = min(600, 30 * pow(2, Double(errors)))
            #expect(delay >= .seconds(ceiling / 2) && delay <= .seconds(ceiling), "after \(errors) errors: \(delay)")
        }
        resource.record(.status(200), at: 0)
        #expect(await host.delay(for: resource, settings: host.config.settings) == .seconds(30))
    }

    @Test func backoffScript_once_pollsTheDemoSite() async throws {
        try await withDemoSite { (base) async throws in
            let result = try await CLIProcess.run(["once", "scripts/backoff.lua", "--", base])
            #expect(result.status == 1)
            #expect(
                result.stdout == "Current state:\n \(base)/failing 500 Internal Server Error\n \(base)/healthy 200 OK\n"
            )
        }
    }

    @Test func urlsFromFileScript_readsTheListBesideIt_orTheFileGiven() async throws {
        let host = try ScriptHost(path: Self.path("urls-from-file.lua"), logger: Logger(label: "test"))
        #expect(
            host.config.targets.map(\.url) == [
                "http://127.0.0.1:8080/healthy", "http://127.0.0.1:8080/failing", "http://127.0.0.1:8080/flapping",
            ])
        try await withDemoSite { (base) async throws in
            let list = try TemporaryScript("# mine\n\(base)/healthy\n  \(base)/redirect  \n", name: "list.txt")
            let result = try await CLIProcess.run(["once", "scripts/urls-from-file.lua", "--", list.path])
            #expect(result.status == 0)
            #expect(result.stdout == "Current state:\n \(base)/healthy 200 OK\n \(base)/redirect 200 OK\n")
        }
    }

    @Test func reporterScript_once_printsAHeaderALinePerURLAndASummary() async throws {
        try await withDemoSite { (base) async throws in
            let result = try await CLIProcess.run(["once", "scripts/reporter.lua", "--", base])
            #expect(result.status == 1)
            let lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 5)
            #expect(lines.first?.hasPrefix("NAME       STATUS") == true)
            #expect(lines.dropFirst().first?.hasPrefix("failing    500 Internal Server Error") == true)
            #expect(lines.last == "2 of 3 down")
        }
    }
}
