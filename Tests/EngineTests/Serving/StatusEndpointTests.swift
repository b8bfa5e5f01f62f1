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
            let pending = Target(url: "http://127.0.0.1:9/never", name: "<script>alert('never')</script> polled")
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
            // The series are at /status/ID, not here.
            #expect(!response.body.contains("\"hours\"") && !response.body.contains("\"days\""))
            #expect(document.total == 3)
            let failing = try #require(byURL[urls.failing])
            #expect(failing.state == "down")
            #expect(failing.errorCount == 1)
            #expect(failing.uptime1d == 0)
            #expect(failing.latencyP95 == nil)
            let change = try #require(document.changes.first { $0.url == urls.failing })
            #expect(change.to == "down")
            #expect(change.toStatus == "500 Internal Server Error")
            #expect(change.id == failing.id)
            // The failing URL's first result; the healthy one's, up, is no incident.
            #expect(document.changes.map(\.url) == [urls.failing])
            let pending = try #require(byURL[urls.pending])
            #expect(pending.state == "pending")
            #expect(pending.status == nil)
            #expect(pending.uptime1d == nil)
            #expect(pending.group == nil)
            // Issue 14 (#12): a pending URL had `"error_count": 0`; the rest of its poll is absent, so is it.
            #expect(pending.errorCount == nil)
        }
    }

    /// Issue 14 (#5, #6): one `/status` document took the monitor's live states and the changes the store
    /// had committed, so a row could be up beside a newest change "to down … so far" for up to a
    /// `status_interval`. A document is now one snapshot: the states of the monitor's last tick, and the
    /// changes up to them (a change committed since, before its `on_change`, waits for the next tick). The
    /// listener's clock stands still, so a document is made anew exactly when the store or the tick changed.
    @Test func status_statesAndChanges_areOfOneTick() async throws {
        let url = "http://127.0.0.1:9/svc"
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let writer = HistoryWriter(store: store, logger: Logger(label: "test"))
        let source = MetricsSource()
        let monitor = StateMonitor(
            urls: [url], reporter: TextReporter(output: Output { _ in }), observers: [writer])
        source.serve(monitor: monitor, targets: [Target(url: url, name: "svc")], settings: Settings())
        let client = HTTPProber.makeClient(pollers: 1)
        let prober = HTTPProber(client: client)
        defer { prober.shutdown() }
        async let writing: Void = writer.run()
        let t0 = Date().timeIntervalSince1970 - 10
        @Sendable func state(_ up: Bool, at: Double) -> State {
            State(
                url: url, name: "svc", status: up ? "200 OK" : "500 Internal Server Error", code: up ? 200 : 500,
                health: up ? .up : .down, since: at, checkedAt: at)
        }
        @Sendable func rowAndNewestChange(_ base: String) async throws -> String {
            let response = try await fetch(base + "/status")
            let document = try JSONDecoder().decode(StatusDocument.self, from: Data(response.body.utf8))
            return "\(document.urls.first?.state ?? "none") \(document.changes.first?.to ?? "none")"
        }
        // Given: the URL down at a tick, its change committed.
        await monitor.update(state(false, at: t0))
        await monitor.tick()
        await writer.sync()
        do {
            try await withService(
                { onReady in
                    MetricsServer(
                        address: ListenAddress(host: "127.0.0.1", port: 0), source: source, metrics: EngineMetrics(),
                        prober: prober, history: store, logger: Logger(label: "test"), onReady: onReady,
                        now: { t0 + 5 })
                },
                { base in
                    let seen1 = try await rowAndNewestChange(base)
                    #expect(seen1 == "down down")
                    // When: it recovers between ticks, its change committed at once (as before `on_change`).
                    await monitor.update(state(true, at: t0 + 1))
                    await writer.sync()
                    // Then: the document is still the last tick's, row and changes alike.
                    let seen2 = try await rowAndNewestChange(base)
                    #expect(seen2 == "down down")
                    // And: after the next tick, both show the recovery.
                    await monitor.tick()
                    await writer.sync()
                    let seen3 = try await rowAndNewestChange(base)
                    #expect(seen3 == "up up")
                    // And: a recovery not committed yet is not shown either, before its tick.
                    await monitor.update(state(false, at: t0 + 2))
                    let seen4 = try await rowAndNewestChange(base)
                    #expect(seen4 == "up up")
                })
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

    /// `/status?page=&per_page=` lists one page of the URLs (issue 14: 100,000 URLs in one document);
    /// a value that is not a page or a size is refused in words.
    @Test func status_pagesWithPageAndPerPage_andRefusesBadValuesInWords() async throws {
        try await Self.withPolledSite { base, urls in
            let response = try await fetch(base + "/status?page=2&per_page=2")
            #expect(response.status == 200)
            let document = try JSONDecoder().decode(StatusDocument.self, from: Data(response.body.utf8))
            #expect(document.urls.map(\.url) == [urls.pending])
            #expect(document.total == 3)
            #expect(document.page == 2)
            #expect(document.perPage == 2)
            #expect(document.changes.count == 1)
            let first = try JSONDecoder().decode(
                StatusDocument.self, from: Data(try await fetch(base + "/status?page=1").body.utf8))
            #expect(first.urls.count == 3)
            #expect(first.perPage == MetricsServer.defaultPerPage)
            for (query, words) in [
                ("page=0", "page: a whole number from 1 expected, got \"0\""),
                ("per_page=x", "per_page: a whole number of URLs from 1 to 10000 expected, got \"x\""),
                ("per_page=10001", "per_page: a whole number of URLs from 1 to 10000 expected, got \"10001\""),
            ] {
                let refused = try await fetch(base + "/status?" + query)
                #expect(refused.status == 400)
                #expect(refused.body == words + "\n")
            }
        }
    }

    @Test func page_isOneSelfContainedDocument_withoutScript() async throws {
        try await Self.withPolledSite { base, urls in
            let page = try await fetchBytes(base + "/")
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(page.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'")
            let body = String(decoding: page.body, as: UTF8.self)
            // Nothing is loaded from elsewhere and nothing runs: no src or href attribute, no script, and no
            // URL but the polled ones.
            #expect(!body.contains("src="))
            // Links only within the page: the banner to "Needs attention", a URL there to its row.
            #expect(body.components(separatedBy: "href=\"").dropFirst().allSatisfy { $0.hasPrefix("#") })
            #expect(!body.contains("<script"))
            let polled = [urls.healthy, urls.failing, urls.pending]
            let found = body.components(separatedBy: "http://").dropFirst().map { "http://" + $0 }
            #expect(found.allSatisfy { link in polled.contains { link.hasPrefix($0) } })
            #expect(body.contains("<meta http-equiv=\"refresh\" content=\"30\">"))
            #expect(body.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"))
        }
    }

    /// The page as served, before any browser runs it: each URL's row with its state, status and uptime,
    /// the daily bars and the latency line as inline SVG, the change to down in the list, and every name
    /// HTML-escaped.
    @Test func page_asServed_showsEachURLsState_uptime_graphs_andChanges_escaped() async throws {
        try await Self.withPolledSite { base, urls in
            let page = try await fetch(base + "/")
            #expect(page.status == 200)
            let html = page.body
            #expect(!html.contains("Loading"))
            #expect(html.contains("<title>Example &amp; Co status</title>"))
            #expect(html.contains("<h1 id=\"title\"><bdi>Example &amp; Co status</bdi></h1>"))
            #expect(
                html.contains(
                    "<span class=\"state up\">1 up</span><span class=\"state down\"><a href=\"#attention\">1 down</a></span>"
                ))
            let healthy = try #require(Self.row(html, url: urls.healthy))
            #expect(healthy.contains("data-state=\"up\""))
            #expect(healthy.contains("<div class=\"name\"><bdi>Shop front</bdi></div>"))
            #expect(healthy.contains("200 OK · since "))
            #expect(healthy.contains("uptime 24 h 100 %, 7 d 100 %, 30 d 100 %"))
            #expect(healthy.contains("aria-label=\"uptime per day, last 90 days\""))
            // A bar for the one day with polls; the 89 without are the bar's background, not 89 rects.
            #expect(healthy.components(separatedBy: "<rect ").count - 1 == 1)
            #expect(healthy.components(separatedBy: "class=\"bar-up\"").count - 1 == 1)
            // Both polls fall in this hour: one point.
            #expect(healthy.contains("<circle class=\"dot\""))
            let failing = try #require(Self.row(html, url: urls.failing))
            #expect(failing.contains("data-state=\"down\""))
            #expect(failing.contains("<div class=\"name\"><bdi>Checkout &lt;api&gt;</bdi></div>"))
            #expect(failing.contains("500 Internal Server Error"))
            #expect(failing.contains("uptime 24 h 0 %, 7 d 0 %, 30 d 0 %"))
            #expect(failing.components(separatedBy: "class=\"bar-down\"").count - 1 == 1)
            let pending = try #require(Self.row(html, url: urls.pending))
            #expect(pending.contains("data-state=\"pending\""))
            #expect(pending.contains("&lt;script&gt;alert(&#39;never&#39;)&lt;/script&gt; polled"))
            #expect(!html.contains("<script>alert"))
            // Groups: "shop", then the URLs without one.
            let shop = try #require(html.range(of: "<h2><bdi>shop</bdi></h2>"))
            let other = try #require(html.range(of: "<h2><bdi>Other</bdi></h2>"))
            #expect(shop.lowerBound < other.lowerBound)
            #expect(
                html.contains(
                    "<li class=\"incident\" data-url=\"\(urls.failing)\" data-to=\"down\"><span class=\"when\">"))
            #expect(
                html.contains(
                    "<strong><bdi>Checkout &lt;api&gt;</bdi></strong></a>: down (<bdi>500 Internal Server Error</bdi>)")
            )
        }
    }

    /// The markup of the row of `url` on the page.
    static func row(_ html: String, url: String) -> String? {
        guard let start = html.range(of: "\" data-url=\"\(url)\" data-state=") else { return nil }
        let rest = html[start.lowerBound...]
        let end = rest.range(of: "<div class=\"url\" ", range: rest.index(after: rest.startIndex)..<rest.endIndex)
        return String(rest[..<(end?.lowerBound ?? rest.endIndex)])
    }

    /// `GET /status/ID` answers the hour series of the URL whose `id` `/status` shows; an id no URL has is a
    /// 404 in words.
    @Test func statusID_answersTheURLsHourSeries_andUnknownIDsAre404() async throws {
        try await Self.withPolledSite { base, urls in
            let status = try await fetch(base + "/status")
            let document = try JSONDecoder().decode(StatusDocument.self, from: Data(status.body.utf8))
            let byURL = Dictionary(uniqueKeysWithValues: document.urls.map { ($0.url, $0) })
            let healthyID = try #require(byURL[urls.healthy]?.id)
            let failingID = try #require(byURL[urls.failing]?.id)
            #expect(healthyID != failingID)
            #expect(byURL[urls.pending]?.id == nil)

            let response = try await fetch(base + "/status/\(healthyID)")
            #expect(response.status == 200)
            #expect(response.contentType == "application/json")
            let series = try JSONDecoder().decode(StatusSeries.self, from: Data(response.body.utf8))
            #expect(series.id == healthyID)
            #expect(series.url == urls.healthy)
            #expect(series.name == "Shop front")
            #expect(series.group == "shop")
            #expect(series.state == "up")
            #expect(series.days == 30)
            #expect(series.hours.map(\.polls) == [2])
            #expect(series.hours.first?.uptime == 1)
            #expect((series.hours.first?.latencyP95 ?? 0) > 0)
            let failing = try JSONDecoder().decode(
                StatusSeries.self, from: Data(try await fetch(base + "/status/\(failingID)?days=2").body.utf8))
            #expect(failing.days == 2)
            #expect(failing.hours.map(\.failures) == [2])
            #expect(failing.hours.first?.latencyP95 == nil)

            // Only the id as /status writes it: no leading zero or sign, no trailing slash.
            for unknown in ["999999", "abc", "-1", "0\(healthyID)", "+\(healthyID)", "\(healthyID)/"] {
                let missing = try await fetch(base + "/status/" + unknown)
                #expect(missing.status == 404)
                #expect(missing.body.hasPrefix("no URL of the script has id \"\(unknown)\""))
            }
            // Issue 14 (#14): a path below an id was a 404 with an empty body.
            for path in ["/status/\(healthyID)/extra", "/elsewhere/x/y"] {
                let nothing = try await fetch(base + path)
                #expect(nothing.status == 404)
                #expect(nothing.body.hasPrefix("nothing is at \(path): the listener answers /, /status, /status/ID"))
            }
            let bad = try await fetch(base + "/status/\(healthyID)?days=0")
            #expect(bad.status == 400)
            #expect(bad.body == "days: a whole number of days from 1 to 400 expected, got \"0\"\n")
        }
    }

    /// HEAD answers as GET does, without the body (RFC 9110 §9.3.2), on every path, so one urlpoll (whose
    /// default method is HEAD) can poll another; any other method is a 405 with `Allow` (§15.5.6).
    @Test func head_answersLikeGet_withoutBody_andOtherMethodsAre405WithAllow() async throws {
        try await Self.withPolledSite { base, urls in
            let document = try JSONDecoder().decode(
                StatusDocument.self, from: Data(try await fetch(base + "/status").body.utf8))
            let id = try #require(document.urls.first { $0.url == urls.healthy }?.id)
            for path in ["/", "/status", "/metrics", "/healthz", "/status/\(id)", "/probe?target=x"] {
                let get = try await fetchBytes(base + path)
                let head = try await fetchBytes(base + path, method: "HEAD")
                #expect(head.status == get.status, "HEAD \(path)")
                #expect(head.headers["content-type"] == get.headers["content-type"], "HEAD \(path)")
                #expect(head.body.isEmpty, "HEAD \(path)")
                for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
                    let other = try await fetchBytes(base + path, method: method)
                    #expect(other.status == 405, "\(method) \(path)")
                    #expect(other.headers["allow"] == "GET, HEAD", "\(method) \(path)")
                }
            }
            #expect(try await fetchBytes(base + "/status", method: "HEAD").status == 200)
            #expect(try await fetchBytes(base + "/nothing", method: "HEAD").status == 404)
            #expect(try await fetchBytes(base + "/nothing", method: "POST").status == 404)
        }
    }

    /// Issue 14 (#3): a path the router does not match, though it looks like one the listener serves
    /// (`/status//5`, `//metrics`), answered 404 with an empty body. Every 404 says in words what is
    /// there; HEAD gets the same status without the body.
    @Test func everyUnknownPath_answers404InWords_andHEADWithoutTheBody() async throws {
        try await Self.withPolledSite { base, _ in
            let document = try JSONDecoder().decode(
                StatusDocument.self, from: Data(try await fetch(base + "/status").body.utf8))
            let id = try #require(document.urls.compactMap(\.id).first)
            for path in [
                "/status/\(id)/extra", "/status//\(id)", "//metrics", "//status", "/metrics/", "/healthz/", "/status/",
                "//", "/status/\(id)/", "/probe/", "/a/b/c/d", "/%6Detrics", "/status/%35",
            ] {
                let get = try await fetchBytes(base + path)
                let head = try await fetchBytes(base + path, method: "HEAD")
                #expect(head.status == get.status, "HEAD \(path)")
                #expect(head.body.isEmpty, "HEAD \(path)")
                guard get.status == 404 else { continue }
                let text = String(decoding: get.body, as: UTF8.self)
                #expect(text.hasSuffix("\n") && text.count > 20, "GET \(path): \(text.debugDescription)")
                #expect(get.headers["content-type"] == "text/plain; charset=utf-8", "GET \(path)")
            }
        }
    }

    /// `/` and `/status` are gzipped when the client accepts it, and only then, with `Vary: Accept-Encoding`
    /// either way; gunzipped, the body is the plain one.
    @Test func pageAndStatus_whenTheClientAcceptsGzip_areGzipped_andOnlyThen() async throws {
        try await Self.withPolledSite { base, _ in
            for path in ["/", "/status"] {
                let plain = try await fetchBytes(base + path)
                #expect(plain.status == 200)
                #expect(plain.headers["content-encoding"] == nil, "\(path)")
                #expect(plain.headers["vary"] == "Accept-Encoding", "\(path)")
                let zipped = try await fetchBytes(base + path, headers: [("Accept-Encoding", "gzip, deflate")])
                #expect(zipped.headers["content-encoding"] == "gzip", "\(path)")
                #expect(zipped.headers["vary"] == "Accept-Encoding", "\(path)")
                #expect(zipped.headers["content-type"] == plain.headers["content-type"], "\(path)")
                #expect(Array(zipped.body.prefix(2)) == [0x1F, 0x8B], "\(path): a gzip member's magic bytes")
                #expect(
                    zipped.body.count * 2 < plain.body.count, "\(path): \(zipped.body.count) of \(plain.body.count)")
                // The shared client undoes the coding, as a browser does.
                let undone = try await fetch(base + path, headers: [("Accept-Encoding", "gzip")])
                #expect(Array(undone.body.utf8) == plain.body, "\(path): gunzipped, the plain body")
                let refused = try await fetchBytes(base + path, headers: [("Accept-Encoding", "gzip;q=0")])
                #expect(refused.headers["content-encoding"] == nil, "\(path)")
            }
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
            #expect(dom.contains("<h1 id=\"title\"><bdi>Example &amp; Co status</bdi></h1>"))
            #expect(dom.contains("data-url=\"\(urls.healthy)\" data-state=\"up\""))
            #expect(dom.contains("data-url=\"\(urls.failing)\" data-state=\"down\""))
            #expect(dom.contains("data-url=\"\(urls.pending)\" data-state=\"pending\""))
            #expect(dom.contains("class=\"incident\" data-url=\"\(urls.failing)\" data-to=\"down\""))
            #expect(dom.contains("Checkout &lt;api&gt;"))
            #expect(dom.contains("aria-label=\"uptime per day, last 90 days\""))
            #expect(dom.contains("&lt;script&gt;alert('never')&lt;/script&gt; polled"))

            // A screenshot for a reviewer to look at, under .build/.
            let shot = packageRoot.appendingPathComponent(".build/status-page.png").path
            _ = try await runShell(
                "exec \"$0\" \"$@\" 2>/dev/null",
                [chromium] + flags + ["--window-size=1000,800", "--screenshot=\(shot)", base + "/"], limit: .seconds(45)
            )
        }
    }
}

extension StatusEndpointTests {
    /// A tick keeps its url→State map (for `/status`'s one-tick snapshot) only when a listener serves the
    /// monitor: kept, the next update copies the whole map, which a run without `--listen` should not pay.
    @Test func tickSnapshot_isKeptOnlyOnceAListenerServesTheMonitor() async {
        let url = "http://127.0.0.1:9/svc"
        let monitor = StateMonitor(urls: [url], reporter: NoReporter(), observers: [])
        await monitor.update(
            State(url: url, name: "svc", status: "200 OK", code: 200, health: .up, since: 1, checkedAt: 1))
        await monitor.tick()
        #expect(await monitor.statesAsOfTick().ticked == false)
        MetricsSource().serve(monitor: monitor, targets: [Target(url: url)], settings: Settings())
        await monitor.tick()
        let (states, ticked) = await monitor.statesAsOfTick()
        #expect(ticked)
        #expect(states[url]?.status == "200 OK")
    }
}

extension StatusEndpointTests {
    /// Issue 14: `GET /status/ID` answered 404 ("no URL of the script has id") when `--store`'s PostgreSQL
    /// could not list the ids (the error was swallowed). It answers 503 with the reason in words, and logs it.
    @Test func statusID_whenTheStoreDoesNotAnswer_is503InWords_notA404() async throws {
        guard TestPostgres.Cluster.binaries != nil else {
            try #require(
                ProcessInfo.processInfo.environment["CI"] == nil,
                "PostgreSQL is not installed (apt-get install -y postgresql); CI must run this test")
            return
        }
        let postgres = try await TestPostgres.Cluster.start()
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        let location = try PostgresLocation(postgres.url, environment: [:])
        let store = PostgresStore(
            location: location, connections: 2, instance: "i1", statementTimeout: .seconds(2),
            logger: Logger(label: "test"))
        let (logger, log) = RecordingLogHandler.make()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            try await store.migrate()
            _ = try await store.sync(PostgresStoreTests.listings(1), scriptHash: "s", now: 3_600)
            let id = try await PostgresHistoryTests.poll(store, at: 3_610, health: .up)
            let target = Target(url: "http://127.0.0.1:1/1")
            let source = MetricsSource()
            let monitor = StateMonitor(urls: [target.url], reporter: TextReporter(output: Output { _ in }))
            source.serve(monitor: monitor, targets: [target], settings: Settings())
            try await withService(
                { onReady in
                    MetricsServer(
                        address: ListenAddress(host: "127.0.0.1", port: 0), source: source, metrics: EngineMetrics(),
                        prober: ScriptedProber([:]), history: PostgresHistory(store: store), logger: logger,
                        onReady: onReady)
                },
                { base in
                    // Given: the id answers while PostgreSQL does.
                    #expect(try await fetch(base + "/status/\(id)").status == 200)
                    // When: PostgreSQL stops.
                    try await postgres.stopServer()
                    let response = try await fetch(base + "/status/\(id)")
                    // Then: 503, in words, and a warning logged.
                    #expect(response.status == 503, "\(response.body)")
                    #expect(response.body.hasPrefix("cannot look the id up now: "), "\(response.body)")
                    #expect(response.body.hasSuffix("; try again once the store answers\n"), "\(response.body)")
                    #expect(log.all.contains { $0.hasPrefix("warning: /status/\(id): ") }, "\(log.all)")
                })
        }
    }
}
