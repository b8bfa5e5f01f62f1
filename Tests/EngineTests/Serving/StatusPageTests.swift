@testable import Engine
import Foundation
import Synchronization
import Testing

/// ``StatusPage`` and ``StatusCache`` alone: the page rendered from a document, and the cache driven by a
/// manual clock and a counted `make`.
@Suite(.timeLimit(.minutes(1))) struct StatusPageTests {
    static func document(up: Int, down: Int) throws -> StatusDocument {
        var targets: [Target] = []
        var states: [String: State] = [:]
        for i in 0..<(up + down) {
            let target = Target(url: "http://127.0.0.1:8080/u/\(i)")
            targets.append(target)
            // The down URLs are spread through the list.
            let step = (up + down) / max(down, 1)
            let isDown = down > 0 && i % step == 0 && i / step < down
            states[target.url] = State(
                url: target.url, name: target.name, status: isDown ? "refused" : "200 OK",
                health: isDown ? .down : .up, since: 1_793_577_600, checkedAt: 1_793_577_600)
        }
        return try StatusDocument.make(
            targets: targets, states: states, settings: Settings(), history: nil, now: 1_793_577_660)
    }

    /// At 100,000 URLs the page does not list 100,000 rows: it lists at most ``StatusPage/urlLimit``, every
    /// URL not up among them, and says how many up URLs it leaves out.
    @Test func manyURLs_listsThoseNotUp_andSaysHowManyUpAreLeftOut() throws {
        let document = try Self.document(up: 990, down: 10)
        #expect(document.counts["down"] == 10)
        let html = StatusPage.html(document)
        #expect(html.components(separatedBy: "<div class=\"url\" ").count - 1 == StatusPage.urlLimit)
        #expect(html.components(separatedBy: "\" data-state=\"down\">\n<div>").count - 1 == 10)
        #expect(html.components(separatedBy: "<li class=\"problem\" data-state=\"down\">").count - 1 == 10)
        #expect(html.contains("500 more URLs are up and not listed here"))
        #expect(
            html.contains(
                "<span class=\"state up\">990 up</span><span class=\"state down\"><a href=\"#attention\">10 down</a></span>"
            ))
    }

    /// Without `--data` the page shows the states, no graphs, and says where changes come from.
    @Test func withoutHistory_showsStates_noGraphs() throws {
        let html = StatusPage.html(try Self.document(up: 2, down: 1))
        #expect(html.components(separatedBy: "<div class=\"url\" ").count - 1 == 3)
        #expect(!html.contains("<svg"))
        #expect(!html.contains("uptime 24 h"))
        #expect(html.contains("Changes are kept when urlpoll runs with --data."))
        #expect(!html.contains("not listed here"))
    }

    /// Each URL's row shows what its check said (escaped), not only the list of changes; a control character
    /// (NUL, ESC) in the title, a name, a group or a message reaches the page as U+FFFD, never raw.
    @Test func row_showsTheURLsDetail_andControlCharactersAreReplaced() throws {
        var target = Target(url: "http://127.0.0.1:8080/api", name: "api\u{1B}[31m red")
        target.group = "core\u{0}group"
        let state = State(
            url: target.url, name: target.name, status: "500 Internal Server Error", code: 500, health: .down,
            detail: "status 500 is not in expect 200-399 <b>\u{7}", since: 1_793_577_600, checkedAt: 1_793_577_600)
        var settings = Settings()
        settings.title = "Status\u{0}\u{85}page"
        let document = try StatusDocument.make(
            targets: [target], states: [target.url: state], settings: settings, history: nil, now: 1_793_577_660)
        let html = StatusPage.html(document)
        #expect(
            html.contains(
                "<div class=\"detail\"><bdi>status 500 is not in expect 200-399 &lt;b&gt;\u{FFFD}</bdi></div>"))
        #expect(html.contains("<h1 id=\"title\"><bdi>Status\u{FFFD}\u{FFFD}page</bdi></h1>"))
        #expect(html.contains("<div class=\"name\"><bdi>api\u{FFFD}[31m red</bdi></div>"))
        #expect(html.contains("<h2><bdi>core\u{FFFD}group</bdi></h2>"))
        let controls = html.unicodeScalars.filter {
            ($0.value < 0x20 && $0 != "\n" && $0 != "\t" && $0 != "\r") || (0x7F...0x9F).contains($0.value)
        }
        #expect(controls.isEmpty)
        // A long unbroken group name wraps at 320 px instead of overflowing.
        #expect(html.contains("h1, h2 { overflow-wrap: anywhere; }"))
    }

    @Test func numbersInWords() {
        #expect(StatusPage.percent(nil) == "–")
        #expect(StatusPage.percent(1) == "100 %")
        #expect(StatusPage.percent(0.99949) == "99.95 %")
        // Only an exact 1 is 100 %, only an exact 0 is 0 %: 1 failure in 100,000 polls, or in 3,000.
        #expect(StatusPage.percent(0.99999) == ">99.99 %")
        #expect(StatusPage.percent(1 - 1.0 / 3_000) == "99.97 %")
        #expect(StatusPage.percent(0.99995) == ">99.99 %")
        #expect(StatusPage.percent(0.00001) == "<0.01 %")
        #expect(StatusPage.percent(0.5) == "50.00 %")
        #expect(StatusPage.percent(0) == "0 %")
        #expect(StatusPage.milliseconds(0.0042) == "4.2 ms")
        #expect(StatusPage.milliseconds(0.25) == "250 ms")
        #expect(StatusPage.span(45) == "45 s")
        #expect(StatusPage.span(720) == "12 min")
        #expect(StatusPage.span(5 * 3600) == "5 h")
        #expect(StatusPage.span(3 * 86_400) == "3 d")
        // Issue 14 (#9): an outage of 4 h 39 min was "5 h"; the minutes (and a day's hours) stay.
        #expect(StatusPage.span(16_740) == "4 h 39 min")
        #expect(StatusPage.span(89 * 60) == "89 min")
        #expect(StatusPage.span(3 * 86_400 + 5 * 3_600) == "3 d 5 h")
        #expect(StatusPage.time(1_793_577_603) == "2026-11-02 00:00:03 UTC")
    }

    /// A store in a fresh folder, and the targets and states of `names` (the first `down` of them down), each
    /// with its first result written as a change at `at + i`.
    static func site(
        _ names: [String], down: Int, at: Double, store: SQLiteHistoryStore, group: (Int) -> String? = { _ in nil }
    ) async throws -> (targets: [Target], states: [String: State]) {
        var targets: [Target] = []
        var states: [String: State] = [:]
        var batch = HistoryBatch()
        for (i, name) in names.enumerated() {
            var target = Target(url: "http://127.0.0.1:8080/\(i)", name: name)
            target.group = group(i)
            targets.append(target)
            let isDown = i < down
            let state = State(
                url: target.url, name: name, status: isDown ? "500 Internal Server Error" : "200 OK",
                code: isDown ? 500 : 200, health: isDown ? .down : .up,
                detail: isDown ? "status 500 is not in expect 200-399" : nil, since: at + Double(i),
                checkedAt: at + Double(i))
            states[target.url] = state
            batch.count(state)
            batch.states[state.historyKey] = state
            batch.changes.append(HistoryChange(state, previous: nil))
        }
        try await store.write(batch)
        return (targets, states)
    }

    /// Issue 14 (#1): every URL's first result counted as a change and the page showed the latest 50, so
    /// 60 URLs added after `payments` went down pushed its open outage off the page. A first result that
    /// is up is no incident, and every URL down now is under "Needs attention", linked to its row.
    @Test func ongoingOutage_staysOnThePage_afterManyNewURLs() async throws {
        let folder = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteHistoryStore(directory: folder)
        let names = ["payments"] + (1...60).map { "svc-\($0)" }
        let site = try await Self.site(names, down: 1, at: 1_793_577_600, store: store)
        let document = try StatusDocument.make(
            targets: site.targets, states: site.states, settings: Settings(), history: store, now: 1_793_577_700)
        #expect(document.changes.map { "\($0.name ?? "?") \($0.to)" } == ["payments down"])
        let html = StatusPage.html(document)
        let attention = try #require(html.range(of: "<section id=\"attention\">"))
        let rows = try #require(html.range(of: "<main id=\"groups\">"))
        #expect(attention.lowerBound < rows.lowerBound)
        #expect(
            html.contains(
                "<li class=\"problem\" data-state=\"down\"><span class=\"state down\">down</span> <a href=\"#u0\"><strong><bdi>payments</bdi></strong></a> (<bdi>500 Internal Server Error</bdi>)"
            ))
        #expect(html.contains("<div class=\"url\" id=\"u0\" data-url=\"http://127.0.0.1:8080/0\""))
        #expect(html.contains("<li class=\"incident\" data-url=\"http://127.0.0.1:8080/0\" data-to=\"down\">"))
        #expect(!html.contains("data-to=\"up\""))
        #expect(html.contains("<a href=\"#attention\">1 down</a>"))
    }

    /// Issue 14 (#2): at 2,000 URLs in 10 groups the two down URLs were deep in their groups (svc-7 after
    /// about 350 up rows) and the banner linked to nothing. They are now listed first, under "Needs
    /// attention", each linked to its row, and the banner's count links there.
    @Test func manyURLs_downURLsAreListedFirst_linkedToTheirRows() async throws {
        let folder = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteHistoryStore(directory: folder)
        var names = (0..<2_000).map { "svc-\($0)" }
        names.swapAt(0, 7)
        names.swapAt(1, 1_500)
        let site = try await Self.site(names, down: 2, at: 1_793_577_600, store: store, group: { "g\($0 % 10)" })
        let document = try StatusDocument.make(
            targets: site.targets, states: site.states, settings: Settings(), history: store, now: 1_793_577_700)
        let html = StatusPage.html(document)
        let firstRow = try #require(html.range(of: "<div class=\"url\" "))
        for (index, name) in [(0, "svc-7"), (1, "svc-1500")] {
            let link = try #require(html.range(of: "<a href=\"#u\(index)\"><strong><bdi>\(name)</bdi></strong></a>"))
            #expect(link.lowerBound < firstRow.lowerBound)
            #expect(html.contains("<div class=\"url\" id=\"u\(index)\""))
        }
        #expect(html.contains("<span class=\"state down\"><a href=\"#attention\">2 down</a></span>"))
    }

    /// Issue 14 (#5): a name with a right-to-left override turned the rest of its line in "Latest changes"
    /// around (the state and status read backwards). Every name, group, status and detail is in a `<bdi>`.
    @Test func namesAndDetails_areBidiIsolated() async throws {
        let folder = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteHistoryStore(directory: folder)
        let site = try await Self.site(
            ["\u{202E}evil RTL"], down: 1, at: 1_793_577_600, store: store, group: { _ in "\u{202E}grp" })
        let html = StatusPage.html(
            try StatusDocument.make(
                targets: site.targets, states: site.states, settings: Settings(), history: store,
                now: 1_793_577_700))
        #expect(
            html.contains(
                "<strong><bdi>\u{202E}evil RTL</bdi></strong></a>: down (<bdi>500 Internal Server Error</bdi>): <bdi>status 500 is not in expect 200-399</bdi>; for 100 s so far</li>"
            ))
        #expect(html.contains("<h2><bdi>\u{202E}grp</bdi></h2>") || !html.contains("<h2>"))
        #expect(html.contains("<div class=\"name\"><bdi>\u{202E}evil RTL</bdi></div>"))
        #expect(!html.contains("\u{202E}evil RTL</strong>"))
    }

    /// Issue 14 (#10): a group named "Other" and the URLs without a group were two sections both headed
    /// "Other"; they are one.
    @Test func groupNamedOther_andUngroupedURLs_areOneSection() throws {
        var targets: [Target] = []
        for (i, group) in ["Other", nil, "Zeta"].enumerated() {
            var target = Target(url: "http://127.0.0.1:8080/\(i)")
            target.group = group
            targets.append(target)
        }
        let html = StatusPage.html(
            try StatusDocument.make(targets: targets, states: [:], settings: Settings(), history: nil, now: 1))
        #expect(html.components(separatedBy: "<h2><bdi>Other</bdi></h2>").count - 1 == 1)
        let zeta = try #require(html.range(of: "<h2><bdi>Zeta</bdi></h2>"))
        let other = try #require(html.range(of: "<h2><bdi>Other</bdi></h2>"))
        #expect(zeta.lowerBound < other.lowerBound)
        let first = try #require(html.range(of: "data-url=\"http://127.0.0.1:8080/0\""))
        let second = try #require(html.range(of: "data-url=\"http://127.0.0.1:8080/1\""))
        #expect(other.lowerBound < first.lowerBound && first.lowerBound < second.lowerBound)
    }

    /// Issue 14 (#7): a URL the script no longer lists kept its `id` in `/status`'s changes (which
    /// `/status/ID` then refused), and its open outage read "for N min so far" for ever.
    @Test func removedURL_changesHaveNoID_andItsOutageIsNotGoingOn() async throws {
        let folder = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteHistoryStore(directory: folder)
        let site = try await Self.site(["gone", "kept"], down: 2, at: 1_793_577_600, store: store)
        let document = try StatusDocument.make(
            targets: [site.targets[1]], states: site.states, settings: Settings(), history: store,
            now: 1_793_577_700)
        let gone = try #require(document.changes.first { $0.url == site.targets[0].url })
        #expect(gone.id == nil)
        #expect(gone.name == nil)
        #expect(document.changes.first { $0.url == site.targets[1].url }?.id != nil)
        let html = StatusPage.html(document)
        #expect(html.contains("200-399</bdi>; until the URL was removed from the script</li>"))
        #expect(html.components(separatedBy: "so far</li>").count - 1 == 1)
    }

    /// Issue 14 (#4): a URL degraded all day had a green bar ("100 % up"): a day with degraded polls is
    /// yellow, and its tooltip says how many were degraded.
    @Test func degradedDay_isNotAGreenBar() {
        var day = Rollup(start: 1_793_577_600 - 1_793_577_600 % 86_400)
        day.polls = 11
        day.degraded = 11
        let bars = StatusPage.URLRow.bars([StatusDocument.Bucket(day, latency: false)], now: 1_793_577_700)
        #expect(bars.map(\.cls) == ["bar-degraded"])
        #expect(bars.first?.title == "2026-11-02: 100 % up, 11 polls, 11 of 11 degraded")
    }

    /// Issue 14 (#12): a day of one poll said "1 polls".
    @Test func dayOfOnePoll_saysOnePoll() {
        var day = Rollup(start: 1_793_577_600 - 1_793_577_600 % 86_400)
        day.polls = 1
        let bars = StatusPage.URLRow.bars([StatusDocument.Bucket(day, latency: false)], now: 1_793_577_700)
        #expect(bars.first?.title == "2026-11-02: 100 % up, 1 poll")
    }

    /// Issue 14 (#10): the 24-hour latency line joined the hours on both sides of hours without polls,
    /// drawing latencies no poll measured. Each run of consecutive hours is a segment of its own, and an hour
    /// alone between gaps a dot.
    @Test func latencyLine_breaksAtHoursWithoutPolls() throws {
        let now = 1_793_577_600 + 23 * 3_600
        func hour(_ offset: Int, ms: Double) -> StatusDocument.Bucket {
            var rollup = Rollup(start: Int64(now - offset * 3_600))
            var state = State(url: "u", name: "u", status: "200 OK", health: .up)
            state.latency = .milliseconds(ms)
            rollup.add(state)
            return StatusDocument.Bucket(rollup, latency: true)
        }
        // Given: hours 23 to 20 ago with polls, none for 7 hours, 12 and 11 ago, none, then 5 ago, and the
        // current hour.
        let hours = [
            hour(23, ms: 100), hour(22, ms: 100), hour(21, ms: 100), hour(20, ms: 100), hour(12, ms: 50),
            hour(11, ms: 50), hour(5, ms: 200), hour(3, ms: 200), hour(2, ms: 200), hour(0, ms: 200),
        ]
        let line = try #require(StatusPage.URLRow.latencyLine(hours))
        let path = try #require(line.path)

        // Then: three segments (23–20, 12–11, 3–2 hours ago), each starting anew after its gap, and the
        // hours alone (5 and 0 ago) as dots.
        #expect(path.components(separatedBy: "M").count - 1 == 3, "\(path)")
        #expect(path.hasPrefix("M4.0,"), "\(path)")
        #expect(path.contains(" M92.0,"), "\(path)")
        #expect(path.contains(" M164.0,"), "\(path)")
        #expect(line.dots.map(\.x) == ["148.0", "188.0"])
        // And: the page draws it as one path of those segments, never a polyline through the gaps.
        var document = try Self.document(up: 1, down: 0)
        document.history = true
        document.urls[0].hours = hours
        let html = StatusPage.html(document)
        #expect(!html.contains("<polyline"))
        #expect(html.contains("<path class=\"latency\" d=\"\(path)\"/>"))
        #expect(html.components(separatedBy: "<circle class=\"dot\"").count - 1 == 2)
        // And: two hours with a gap between are two dots, no line.
        let apart = try #require(StatusPage.URLRow.latencyLine([hour(2, ms: 10), hour(0, ms: 10)]))
        #expect(apart.path == nil)
        #expect(apart.dots.count == 2)
    }

    final class Counter: Sendable {
        let value = Mutex(0)
        let clock = Mutex(1_000.0)
        var now: Double { self.clock.withLock { $0 } }
        func advance(_ seconds: Double) { self.clock.withLock { $0 += seconds } }
    }

    static func made(_ counter: Counter) -> @Sendable () async -> Result<StatusCache.Made, HistoryError> {
        {
            let n = counter.value.withLock { value in
                value += 1
                return value
            }
            var settings = Settings()
            settings.title = "made \(n)"
            let document = StatusDocument(title: settings.title, generatedAt: 0, history: false, counts: [:], urls: [])
            return .success(StatusCache.Made(document: document, json: []))
        }
    }

    /// One document per tick: the same while it is younger than the status interval and nothing was written,
    /// a new one after a write commits, after the interval, or for another script.
    @Test func cache_makesOneDocumentPerWriteOrInterval() async throws {
        let counter = Counter()
        let cache = StatusCache(now: { counter.now })
        func title(script: Int = 1, generation: Int) async throws -> String {
            try await cache.document(
                script: script, generation: generation, maxAge: .seconds(10), make: Self.made(counter)
            )
            .document.title
        }
        #expect(try await title(generation: 1) == "made 1")
        counter.advance(9)
        #expect(try await title(generation: 1) == "made 1")
        #expect(try await title(generation: 2) == "made 2")
        counter.advance(10)
        #expect(try await title(generation: 2) == "made 3")
        #expect(try await title(script: 2, generation: 2) == "made 4")
        // A clock set back does not keep a document forever.
        counter.advance(-100)
        #expect(try await title(script: 2, generation: 2) == "made 5")
    }

    /// A document that took long to make (many URLs) is kept 4 times as long as it took, whatever was
    /// written since, so making documents takes at most a quarter of a core.
    @Test func cache_keepsASlowDocument_fourTimesAsLongAsItTook() async throws {
        let counter = Counter()
        let cache = StatusCache(now: { counter.now })
        let slow: @Sendable () async -> Result<StatusCache.Made, HistoryError> = {
            counter.advance(20)  // making it takes 20 s on the manual clock
            return await Self.made(counter)()
        }
        func title(generation: Int, make: @escaping @Sendable () async -> Result<StatusCache.Made, HistoryError>)
            async throws -> String
        {
            try await cache.document(script: 1, generation: generation, maxAge: .seconds(10), make: make).document
                .title
        }
        #expect(try await title(generation: 1, make: slow) == "made 1")
        counter.advance(50)  // 70 s after it was asked for: under 4 × 20 s
        #expect(try await title(generation: 2, make: Self.made(counter)) == "made 1")
        counter.advance(11)  // 81 s
        #expect(try await title(generation: 3, make: Self.made(counter)) == "made 2")
    }

    /// Requests that find the cache stale together wait for one document.
    @Test func cache_concurrentRequests_shareOneMake() async throws {
        let counter = Counter()
        let cache = StatusCache(now: { counter.now })
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await cache.document(script: 1, generation: 1, maxAge: .seconds(10), make: Self.made(counter))
                        .document.title
                }
            }
            for try await title in group { #expect(title == "made 1") }
        }
        #expect(counter.value.withLock { $0 } == 1)
    }

    /// A read that fails is not kept: the next request reads again.
    @Test func cache_failedRead_isNotKept() async throws {
        let counter = Counter()
        let cache = StatusCache(now: { counter.now })
        await #expect(throws: HistoryError.self) {
            try await cache.document(script: 1, generation: 1, maxAge: .seconds(10)) {
                .failure(HistoryError("cannot read /tmp/x: disk I/O error"))
            }
        }
        let title = try await cache.document(script: 1, generation: 1, maxAge: .seconds(10), make: Self.made(counter))
            .document.title
        #expect(title == "made 1")
    }

    /// The page (and each gzipped body) is made once per document, however many ask for it at once, and the
    /// time it takes counts in the document's cost: a slow page keeps its document 4 times as long too.
    @Test func cache_makesThePageOncePerDocument_andCountsItsTime() async throws {
        let counter = Counter()
        let cache = StatusCache(now: { counter.now })
        let renders = Mutex(0)
        let made = try await cache.document(script: 1, generation: 1, maxAge: .seconds(10), make: Self.made(counter))
        let render: @Sendable () async -> Result<[UInt8], HistoryError> = {
            renders.withLock { $0 += 1 }
            counter.advance(20)  // rendering takes 20 s on the manual clock
            return .success(Array("<html>".utf8))
        }
        try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<20 { group.addTask { try await cache.bytes(of: made, .page, make: render) } }
            for try await page in group { #expect(page == Array("<html>".utf8)) }
        }
        #expect(try await cache.bytes(of: made, .page, make: render) == Array("<html>".utf8))
        #expect(renders.withLock { $0 } == 1)
        // 70 s after the document was made, the store written since: kept, as it cost 20 s.
        counter.advance(50)
        let again = try await cache.document(
            script: 1, generation: 2, maxAge: .seconds(10), make: Self.made(counter))
        #expect(again === made)
        counter.advance(11)
        let next = try await cache.document(script: 1, generation: 2, maxAge: .seconds(10), make: Self.made(counter))
        #expect(next.document.title == "made 2")
        // A new document renders its page anew.
        _ = try await cache.bytes(of: next, .page, make: render)
        #expect(renders.withLock { $0 } == 2)
    }
}
