@testable import Engine
import Foundation
import Testing

/// ``StatusDocument/make(targets:states:settings:history:now:)`` alone, from the monitor's map as it is
/// keyed (by each URL as the script wrote it) and no store.
@Suite struct StatusDocumentTests {
    /// A URL with `user:password@` is keyed in the monitor's map by the URL as written, password included;
    /// `/status` still shows its state (not `pending`), and never the password.
    @Test func urlsWithCredentials_showTheirState_notPending() throws {
        let plain = Target(url: "http://127.0.0.1:8080/a")
        let first = Target(url: "http://probe:SECRET1@127.0.0.1:8080/b")
        var second = Target(url: "http://probe:SECRET2@127.0.0.1:8080/b")
        second.name = "second"
        var states: [String: State] = [:]
        for (target, status, health) in [
            (plain, "200 OK", Health.up), (first, "200 OK", .up), (second, "500 Internal Server Error", .down),
        ] {
            states[target.url] = State(
                url: target.displayURL, rawURL: target.url, name: target.name, status: status, health: health,
                since: 1, checkedAt: 2)
        }
        let document = try StatusDocument.make(
            targets: [plain, first, second], states: states, settings: Settings(), history: nil, now: 3)
        #expect(document.counts == ["up": 2, "down": 1, "degraded": 0, "pending": 0])
        #expect(document.urls.map(\.state) == ["up", "up", "down"])
        #expect(document.urls.map(\.status) == ["200 OK", "200 OK", "500 Internal Server Error"])
        let shown = "http://probe:xxxxx@127.0.0.1:8080/b"
        #expect(document.urls.map(\.url) == [plain.url, shown, shown])
        let json = String(decoding: try document.json(), as: UTF8.self)
        #expect(!json.contains("SECRET"))
    }
    /// URLs that print alike each show their own uptime and changes from the `--data` store (a real SQLite
    /// file), keyed by their printed URL and ordinal, not the sum of both.
    @Test func urlsThatPrintAlike_showTheirOwnHistory() async throws {
        var first = Target(url: "http://probe:SECRET1@127.0.0.1:8080/b")
        var second = Target(url: "http://probe:SECRET2@127.0.0.1:8080/b")
        var targets = [first, second]
        LuaRuntime.numberNamesSharedByCredentials(&targets)
        (first, second) = (targets[0], targets[1])
        let folder = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteHistoryStore(directory: folder)
        let now = 1_793_577_600.0
        var batch = HistoryBatch()
        var states: [String: State] = [:]
        for (target, health) in [(first, Health.up), (second, .down)] {
            for i in 0..<4 {
                let state = State(
                    url: target.displayURL, rawURL: target.url, name: target.name, ordinal: target.ordinal,
                    status: health == .up ? "200 OK" : "401 Unauthorized", health: health, since: now - 600,
                    checkedAt: now - 600 + Double(i))
                batch.count(state)
                if i == 0 { batch.changes.append(HistoryChange(state, previous: nil)) }
                states[target.url] = state
            }
        }
        try await store.write(batch)
        let document = try StatusDocument.make(
            targets: targets, states: states, settings: Settings(), history: store, now: now)
        #expect(document.urls.map(\.uptime1d) == [1.0, 0.0])
        // The first URL's first result, up, is no incident (the store leaves it out of the latest changes).
        #expect(document.changes.map { "\($0.name ?? "?"): \($0.to)" } == ["\(second.name): down"])
        #expect(Set(document.urls.compactMap(\.id)).count == 2)
        #expect(!String(decoding: try document.json(), as: UTF8.self).contains("SECRET"))
    }

    /// Issue 14: `/status` listed each URL's 24 hour and up to 90 day buckets and its last 10 changes,
    /// ~3.3 KB a URL (330 MB at 100,000 URLs). It now lists each URL's summaries only (the series are at
    /// `/status/ID`), and the latest changes once for all URLs.
    @Test func json_keepsSummariesPerURL_withoutTheSeries() async throws {
        // Given: 100 URLs with 30 days of hour and day rollups, each changed once.
        let folder = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteHistoryStore(directory: folder)
        let now = 1_793_577_600.0 + 12 * 3_600
        let targets = (0..<100).map { Target(url: "http://127.0.0.1:8080/u/\($0)") }
        var batch = HistoryBatch()
        var states: [String: State] = [:]
        for target in targets {
            for hour in 0..<(30 * 24) {
                let state = State(
                    url: target.url, name: target.name, status: "200 OK", health: hour == 5 ? .down : .up,
                    latency: .milliseconds(3), since: now - 30 * 86_400, checkedAt: now - Double(hour) * 3_600)
                batch.count(state)
                if hour == 0 {
                    states[target.url] = state
                    // A change from down (a first result that is up would be no incident).
                    var before = state
                    before.health = .down
                    batch.changes.append(HistoryChange(state, previous: before))
                }
            }
        }
        try await store.write(batch)

        // When: the document is made and written as JSON.
        let document = try StatusDocument.make(
            targets: targets, states: states, settings: Settings(), history: store, now: now)
        let json = try document.json()

        // Then: each URL has its uptime and latency summaries, no series, and the document is small.
        let decoded = try JSONDecoder().decode(StatusDocument.self, from: Data(json))
        #expect(decoded.urls.count == 100)
        #expect(decoded.total == 100)
        #expect(decoded.urls.allSatisfy { $0.uptime30d != nil && $0.uptime1d != nil && $0.latencyP95 != nil })
        #expect(decoded.urls.allSatisfy { $0.hours.isEmpty && $0.days.isEmpty })
        #expect(decoded.changes.count == StatusDocument.changeCount)
        #expect(json.count < 100 * 600 + 50 * 300, "\(json.count) bytes")
        // And: the page still draws each URL's days and hours from the same document.
        #expect(document.urls.allSatisfy { $0.days.count >= 30 && $0.hours.count >= 24 })
    }

    /// Issue 14: rows dated in the future (polls written before the clock was set back) counted in the
    /// uptimes and showed as buckets. They now count in no window until their time comes.
    @Test func rollupsDatedAfterNow_countInNoUptime() async throws {
        // Given: a URL up for the last hour, and down 2 hours and 2 days from now.
        let folder = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteHistoryStore(directory: folder)
        let now = 1_793_577_600.0 + 12 * 3_600
        let target = Target(url: "http://127.0.0.1:8080/clock")
        var batch = HistoryBatch()
        for (offset, health) in [(-600.0, Health.up), (2 * 3_600, .down), (2 * 86_400, .down)] {
            batch.count(
                State(
                    url: target.url, name: target.name, status: health == .up ? "200 OK" : "refused", health: health,
                    since: now + offset, checkedAt: now + offset))
        }
        try await store.write(batch)

        // When: the document is made now.
        let document = try StatusDocument.make(
            targets: [target], states: [:], settings: Settings(), history: store, now: now)

        // Then: only the poll before now counts.
        let entry = try #require(document.urls.first)
        #expect(entry.uptime1d == 1)
        #expect(entry.uptime7d == 1)
        #expect(entry.uptime30d == 1)
        #expect(entry.hours.map(\.polls) == [1])
        #expect(entry.days.map(\.polls) == [1])
        // And: /status/ID's series shows no hour after now either.
        let id = try #require(store.urlIDs()[target.historyKey])
        let series = StatusSeries(
            id: id, target: target, state: nil, hours: try store.hourly(id: id, since: now - 86_400), days: 1, now: now)
        #expect(series.hours.map(\.polls) == [1])
    }

    /// `page(_:perPage:)` slices the URLs in the script's order; past the end it lists none.
    @Test func page_slicesTheURLs() async throws {
        let targets = (0..<5).map { Target(url: "http://127.0.0.1:8080/u/\($0)") }
        let document = try StatusDocument.make(targets: targets, states: [:], settings: Settings(), history: nil)
        #expect(document.page(2, perPage: 2).urls.map(\.url) == [targets[2].url, targets[3].url])
        #expect(document.page(3, perPage: 2).urls.map(\.url) == [targets[4].url])
        #expect(document.page(4, perPage: 2).urls.isEmpty)
        #expect(document.page(Int.max, perPage: 10_000).urls.isEmpty)
        #expect(document.page(2, perPage: 2).total == 5)
    }
}
