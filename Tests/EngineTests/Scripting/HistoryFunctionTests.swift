@testable import Engine
import Foundation
import Logging
import Testing

/// `urlpoll.history(url, seconds)`, read from a real `--data` store, and its errors at the script's line.
@Suite(.timeLimit(.minutes(1))) struct HistoryFunctionTests {
    static let url = "http://127.0.0.1:9/a"

    final class Folder: Sendable {
        let path = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
        deinit { try? FileManager.default.removeItem(atPath: self.path) }
    }

    /// Loads a script whose line 2 is `local ok, err = pcall(CALL)` and returns what it caught.
    static func caught(_ call: String, history: (any HistoryStore)? = nil) throws -> (message: String, path: String) {
        let script = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/" }
            local ok, err = pcall(\(call))
            if ok then error("pcall did not catch an error", 0) end
            error("caught: " .. tostring(err), 0)
            """)
        let error = try #require(throws: ScriptError.self) {
            _ = try ScriptHost(path: script.path, history: history, logger: Logger(label: "test"))
        }
        return (error.message, script.path)
    }

    /// Issue 14 (N6): the message named `--data` only, not `--store`.
    @Test func history_withoutData_raisesAtTheCallingLine_sayingWhatToDo() throws {
        let (message, path) = try Self.caught("urlpoll.history, \"\(Self.url)\", 60")
        #expect(
            message
                == "caught: \(path):2: urlpoll.history needs the history store: run with --data DIR (urlpoll run SCRIPT --data /var/lib/urlpoll), or with --store postgresql://USER@HOST:PORT/DB to share one in PostgreSQL"
        )
    }

    @Test(arguments: [
        ("urlpoll.history, 5, 60", "bad argument #1 to 'history' (URL string expected, got number 5)"),
        (
            "urlpoll.history, \"http://x/\"",
            "bad argument #2 to 'history' (a number of seconds above 0 and at most 34560000 expected, got no value)"
        ),
        (
            "urlpoll.history, \"http://x/\", -1",
            "bad argument #2 to 'history' (a number of seconds above 0 and at most 34560000 expected, got number -1)"
        ),
    ])
    func history_withBadArguments_raisesAtTheCallingLine(call: String, message: String) throws {
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let (caught, path) = try Self.caught(call, history: store)
        #expect(caught == "caught: \(path):2: \(message)")
    }

    /// `urlpoll.history(url, …)` finds URLs that differ only by their password by the URL as written
    /// (`s.raw_url`) or by name; the printed URL they share (`s.url`) names neither, and is refused in words.
    @Test func historyKeys_tellURLsThatPrintAlikeApart() throws {
        var targets = [
            Target(url: "http://probe:A@127.0.0.1:9/x"), Target(url: "http://probe:B@127.0.0.1:9/x"),
            Target(url: "http://127.0.0.1:9/y"),
        ]
        LuaRuntime.numberNamesSharedByCredentials(&targets)
        let index = HistoryKeyIndex(targets)
        let shown = "http://probe:xxxxx@127.0.0.1:9/x"
        #expect(try index.key(for: "http://probe:A@127.0.0.1:9/x") == HistoryKey(url: shown, ordinal: 1))
        #expect(try index.key(for: "http://probe:B@127.0.0.1:9/x") == HistoryKey(url: shown, ordinal: 2))
        #expect(try index.key(for: "\(shown) (2)") == HistoryKey(url: shown, ordinal: 2))
        #expect(try index.key(for: "http://127.0.0.1:9/y") == HistoryKey(url: "http://127.0.0.1:9/y"))
        #expect(throws: HistoryKeyIndex.Ambiguous.self) { try index.key(for: shown) }
        // A URL the script no longer lists is looked up as printed, never by its password.
        #expect(
            try index.key(for: "http://probe:C@127.0.0.1:9/z") == HistoryKey(url: "http://probe:xxxxx@127.0.0.1:9/z"))
    }

    /// Issue 14 (#4): a name two URLs share answered silently for the first one; it now raises at the calling
    /// line, as a printed URL two URLs share does. A URL (as written or printed) wins over another URL's name.
    @Test func history_ofANameTwoURLsShare_raisesAtTheCallingLine_andAURLWinsOverAName() async throws {
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let script = try TemporaryScript(
            """
            urls = { { url = "http://127.0.0.1:9/up", name = "api" }, { url = "http://127.0.0.1:9/down", name = "api" },
              { url = "http://127.0.0.1:9/other", name = "http://127.0.0.1:9/down" } }
            function report(s)
              if s.index > 1 then return end
              assert(urlpoll.history("http://127.0.0.1:9/down", 60).polls == 0, "the URL, not the name")
              urlpoll.history("api", 60)
            end
            """)
        let (logger, log) = RecordingLogHandler.make()
        let host = try ScriptHost(path: script.path, history: store, logger: logger)

        await host.report([
            State(url: "http://127.0.0.1:9/up", name: "api", status: "200 OK", health: .up, checkedAt: 0)
        ])

        #expect(
            log.all.filter { $0.hasPrefix("error:") } == [
                "error: \(script.path):6: bad argument #1 to 'history' (2 URLs are named api: pass s.raw_url or s.url to say which) (skipping this URL's report)"
            ])
        let index = HistoryKeyIndex([
            Target(url: "http://127.0.0.1:9/up", name: "api"), Target(url: "http://127.0.0.1:9/down", name: "api"),
            Target(url: "http://127.0.0.1:9/other", name: "http://127.0.0.1:9/down"),
        ])
        #expect(throws: HistoryKeyIndex.Ambiguous.self) { try index.key(for: "api") }
        #expect(try index.key(for: "http://127.0.0.1:9/down") == HistoryKey(url: "http://127.0.0.1:9/down"))
    }

    @Test func history_countsThePollsAndChangesInTheWindow() async throws {
        // Given: a store holding 20 polls of a over the last 20 minutes (the last 4 down) and its changes,
        // and one poll 2 hours ago.
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let now = Date().timeIntervalSince1970
        var batch = HistoryBatch()
        var previous: State?
        for i in 0..<20 {
            let down = i >= 16
            let at = now - 1_200 + Double(i) * 60
            let state = State(
                url: Self.url, name: "a", status: down ? "503 Service Unavailable" : "200 OK", code: down ? 503 : 200,
                health: down ? .down : .up, error: down ? "status" : nil,
                detail: down ? "status 503 is not in expect 200-399" : nil, latency: .milliseconds(10 * (i + 1)),
                checkedAt: at)
            batch.count(state)
            if state.differs(from: previous) { batch.changes.append(HistoryChange(state, previous: previous)) }
            previous = state
        }
        batch.count(State(url: Self.url, name: "a", status: "200 OK", health: .up, checkedAt: now - 7_200))
        try await store.write(batch)

        // When: a script asks for the last 30 minutes, and for the last 3 hours.
        let script = try TemporaryScript(
            """
            urls = { "\(Self.url)" }
            local h = urlpoll.history("\(Self.url)", 1800)
            assert(h.polls == 20, "polls " .. h.polls)
            assert(h.failures == 4 and h.degraded == 0, "failures " .. h.failures)
            assert(h.uptime == 0.8, "uptime " .. tostring(h.uptime))
            -- 16 polls up, 10…160 ms: the p95 is 150 ms, within 2 %
            assert(math.abs(h.latency_p95 - 0.150) <= 0.150 * 0.021, "p95 " .. tostring(h.latency_p95))
            assert(#h.changes == 2, "changes " .. #h.changes)
            assert(h.changes[1].from == nil and h.changes[1].to == "up" and h.changes[1].to_status == "200 OK")
            local down = h.changes[2]
            assert(down.from == "up" and down.to == "down" and down.to_status == "503 Service Unavailable")
            assert(down.detail == "status 503 is not in expect 200-399", down.detail)
            assert(math.abs(down.at - (urlpoll.now() - 240)) < 30, "at " .. down.at)
            local longer = urlpoll.history("\(Self.url)", 3 * 3600)
            assert(longer.polls == 21, "3 h polls " .. longer.polls)
            local none = urlpoll.history("http://127.0.0.1:9/unknown", 60)
            assert(none.polls == 0 and none.uptime == nil and none.latency_p95 == nil and #none.changes == 0)
            """)
        // Then: the script's assertions hold (a failed one would throw here with its line).
        _ = try ScriptHost(path: script.path, history: store, logger: Logger(label: "test"))
    }

    /// Issue 14 (#1): `urlpoll.history` of a URL the script does not list and the store never recorded (a
    /// typo in a hook) answered an empty history, which reads as "no polls". It raises at the calling line
    /// in words; a URL listed but not polled yet, and one no longer listed but recorded, keep their counts.
    @Test func history_ofAURLNeitherListedNorRecorded_raisesAtTheCallingLine() async throws {
        // Given: a store that recorded one poll of /old, and a script that lists /a (not polled yet) only.
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        var batch = HistoryBatch()
        let old = State(
            url: "http://127.0.0.1:9/old", name: "old", status: "200 OK", health: .up,
            checkedAt: Date().timeIntervalSince1970 - 30)
        batch.states[old.historyKey] = old
        batch.count(old)
        try await store.write(batch)
        let script = try TemporaryScript(
            """
            urls = { { url = "\(Self.url)", name = "a" } }
            function report(s)
              assert(urlpoll.history("\(Self.url)", 60).polls == 0, "listed")
              assert(urlpoll.history("a", 60).polls == 0, "by name")
              assert(urlpoll.history("http://127.0.0.1:9/old", 600).polls == 1, "recorded")
              urlpoll.history("http://127.0.0.1:9/typo", 60)
            end
            """)
        let (logger, log) = RecordingLogHandler.make()
        let host = try ScriptHost(path: script.path, history: store, logger: logger)

        // When: its report hook runs.
        await host.report([State(url: Self.url, name: "a", status: "200 OK", health: .up, checkedAt: 0)])

        // Then: the listed and the recorded URL were answered, and the typo raised at line 6, in words.
        #expect(
            log.all.filter { $0.hasPrefix("error:") } == [
                "error: \(script.path):6: urlpoll.history: no URL of the script is \"http://127.0.0.1:9/typo\" and the history has none recorded (pass s.raw_url, s.url or a URL's name) (skipping this URL's report)"
            ])
    }
}
