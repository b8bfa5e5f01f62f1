import Engine
import Foundation
import Logging
import Testing

/// `GET /status` and the status page at `/`, through the real listener, with the real prober polling the
/// demo site on loopback and the history written to a real SQLite file; the page is rendered by Debian's
/// headless Chromium.
@Suite(.timeLimit(.minutes(2))) struct StatusEndpointTests {
    final class Folder: Sendable {
        let path = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
        deinit { try? FileManager.default.removeItem(atPath: self.path) }
    }

    /// Polls the demo site's healthy, failing and flapping pages twice with history kept, then runs `body`
    /// with the listener's base URL and the URLs.
    static func withPolledSite(
        _ body:
            @Sendable (_ base: String, _ urls: (healthy: String, failing: String, pending: String)) async throws
            -> Void
    ) async throws {
        try await withDemoSite { site in
            var healthy = Target(url: site + "/healthy", name: "Shop front")
            healthy.group = "shop"
            var failing = Target(url: site + "/failing", name: "Checkout <api>")
            failing.group = "shop"
            let pending = Target(url: "http://127.0.0.1:9/never", name: "never polled")
            let targets = [healthy, failing, pending]
            let folder = Folder()
            let store = try SQLiteHistoryStore(directory: folder.path)
            let writer = HistoryWriter(store: store, logger: Logger(label: "test"))
            let metrics = EngineMetrics()
            let source = MetricsSource()
            let monitor = StateMonitor(
                urls: targets.map(\.url), reporter: TextReporter(output: Output { _ in }), observers: [writer])
            var settings = Settings()
            settings.title = "Example & Co status"
            source.serve(monitor: monitor, targets: targets, settings: settings)
            let client = HTTPProber.makeClient(pollers: 2)
            let prober = HTTPProber(client: client)
            defer { prober.shutdown() }
            let pool = PollerPool(
                settings: settings, targets: [healthy, failing], prober: prober, policy: LinearBackoff(),
                monitor: monitor, clock: ContinuousClock())
            let urls = (healthy: healthy.url, failing: failing.url, pending: pending.url)
            async let writing: Void = writer.run()
            _ = await pool.runOnce()
            _ = await pool.runOnce()
            await monitor.tick()
            await writer.sync()
            do {
                try await withService(
                    { onReady in
                        MetricsServer(
                            address: ListenAddress(host: "127.0.0.1", port: 0), source: source, metrics: metrics,
                            prober: prober, history: store, logger: Logger(label: "test"), onReady: onReady)
                    }, { base in try await body(base, urls) })
            } catch {
                writer.finish()
                await writing
                try await client.shutdown()
                throw error
            }
            writer.finish()
            await writing
            try await client.shutdown()
        }
    }

    @Test func status_listsEveryURL_withItsGroupState_uptimeLatencyAndChanges() async throws {
        try await Self.withPolledSite { base, urls in
            let response = try await fetch(base + "/status")
            #expect(response.status == 200)
            #expect(response.contentType == "application/json")
            let document = try JSONDecoder().decode(StatusDocument.self, from: Data(response.body.utf8))
            #expect(document.title == "Example & Co status")
            #expect(document.history)
            #expect(document.counts == ["up": 1, "down": 1, "degraded": 0, "pending": 1])
            let byURL = Dictionary(uniqueKeysWithValues: document.urls.map { ($0.url, $0) })
            let healthy = try #require(byURL[urls.healthy])
            #expect(healthy.name == "Shop front")
            #expect(healthy.group == "shop")
            #expect(healthy.state == "up")
            #expect(healthy.status == "200 OK")
            #expect(healthy.uptime1d == 1)
            #expect(healthy.uptime30d == 1)
            #expect((healthy.latencyP95 ?? 0) > 0)
            #expect(healthy.hours.map(\.polls).reduce(0, +) == 2)
            #expect(healthy.days.count == 1)
            let failing = try #require(byURL[urls.failing])
            #expect(failing.state == "down")
            #expect(failing.errorCount == 1)
            #expect(failing.uptime1d == 0)
            #expect(failing.latencyP95 == nil)
            #expect(failing.changes.map(\.to) == ["down"])
            #expect(failing.changes.first?.toStatus == "500 Internal Server Error")
            let pending = try #require(byURL[urls.pending])
            #expect(pending.state == "pending")
            #expect(pending.status == nil)
            #expect(pending.uptime1d == nil)
            #expect(pending.group == nil)
        }
    }

    @Test func page_isOneSelfContainedDocument() async throws {
        try await Self.withPolledSite { base, _ in
            let page = try await fetch(base + "/")
            #expect(page.status == 200)
            #expect(page.contentType == "text/html; charset=utf-8")
            // Nothing is loaded from elsewhere: no src or href attributes, and no URL but the SVG namespace.
            #expect(!page.body.contains("src="))
            #expect(!page.body.contains("href="))
            let urls = page.body.components(separatedBy: "http").dropFirst().map { "http" + $0.prefix(30) }
            #expect(urls.allSatisfy { $0.hasPrefix("http://www.w3.org/2000/svg") })
        }
    }

    /// Debian's Chromium, if installed.
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    @Test func page_inHeadlessChromium_showsEachURLsState_andTheChangeToDown() async throws {
        guard let chromium = Self.chromium else {
            // CI installs it (.ci/run); a developer's machine may not have it.
            try #require(
                ProcessInfo.processInfo.environment["CI"] == nil,
                "Chromium is not installed (apt-get install -y chromium); CI must run this test")
            print("skipping page_inHeadlessChromium: Chromium is not installed (apt-get install -y chromium)")
            return
        }
        try await Self.withPolledSite { base, urls in
            let profile = "/tmp/urlpoll-chromium-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: profile) }
            let flags = [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--user-data-dir=\(profile)",
                "--virtual-time-budget=5000",
            ]
            let dump = try #require(
                try await runShell(
                    "exec \"$0\" \"$@\" 2>/dev/null", [chromium] + flags + ["--dump-dom", base + "/"],
                    limit: .seconds(45)),
                "Chromium did not finish within 45 s")
            #expect(dump.status == 0)
            let dom = dump.stdout
            // The rendered DOM: the title, each URL with its state, and the failing URL's change to down.
            #expect(dom.contains("<h1 id=\"title\">Example &amp; Co status</h1>"))
            #expect(dom.contains("data-url=\"\(urls.healthy)\" data-state=\"up\""))
            #expect(dom.contains("data-url=\"\(urls.failing)\" data-state=\"down\""))
            #expect(dom.contains("data-url=\"\(urls.pending)\" data-state=\"pending\""))
            #expect(dom.contains("class=\"incident\" data-url=\"\(urls.failing)\" data-to=\"down\""))
            #expect(dom.contains("Checkout &lt;api&gt;"))
            #expect(dom.contains("aria-label=\"uptime per day, last 30 days\""))
            #expect(!dom.contains("<div id=\"banner\">Cannot read"))
            #expect(!dom.contains("<div id=\"banner\">Loading"))

            // A screenshot for a reviewer to look at, under .build/.
            let shot = packageRoot.appendingPathComponent(".build/status-page.png").path
            _ = try await runShell(
                "exec \"$0\" \"$@\" 2>/dev/null",
                [chromium] + flags + ["--window-size=1000,800", "--screenshot=\(shot)", base + "/"], limit: .seconds(45)
            )
        }
    }
}
