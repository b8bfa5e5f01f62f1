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
        #expect(document.urls.map { $0.changes.map(\.to) } == [["up"], ["down"]])
        #expect(!String(decoding: try document.json(), as: UTF8.self).contains("SECRET"))
    }
}
