import DemoSite
import Engine
import Foundation
import Logging
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
