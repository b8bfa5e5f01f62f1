@testable import Engine
import Foundation
import Logging
import Testing

/// `urlpoll.history` with `--store`: read from a real PostgreSQL (TestPostgres.Cluster, a server of the
/// test's own that it freezes), in hooks that suspend while it answers, as `urlpoll.http` does.
@Suite(.serialized, .timeLimit(.minutes(2))) struct HistoryFunctionStoreTests {
    static func response() -> ProbeResult {
        ProbeResult(.response(code: 200, reason: "OK"), latency: .milliseconds(1), body: [])
    }

    /// Issue 15: a hook calling `urlpoll.history` while PostgreSQL hangs holds only itself: other URLs'
    /// hooks and backoff run meanwhile; its error says what happened, at its line; where Lua cannot
    /// suspend (backoff) the read waits at most 1 s and says so.
    @Test func history_whilePostgresIsFrozen_suspendsOnlyItsHook_andItsErrorSaysWhyAtItsLine() async throws {
        guard let postgres = try await SharedScheduleTests.ownPostgres() else { return }
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        let location = try PostgresLocation(postgres.url, environment: [:])
        let store = PostgresStore(
            location: location, connections: 2, instance: "i1", statementTimeout: .seconds(2),
            logger: PostgresStoreTests.logger)
        let pool = Task { await store.run() }
        defer { pool.cancel() }
        try await store.migrate()
        let history = PostgresHistory(store: store)
        let (logger, log) = RecordingLogHandler.make()
        let script = try TemporaryScript(
            """
            urls = {
              { url = "http://127.0.0.1:9/a", check = function(res)
                  a_calls = (a_calls or 0) + 1
                  local ok, h = pcall(urlpoll.history, "http://127.0.0.1:9/a", 60)
                  a_returns = (a_returns or 0) + 1
                  return ok and "up" or "down", ok and ("polls " .. h.polls) or h
                end },
              { url = "http://127.0.0.1:9/b", check = function(res)
                  return "up", a_calls .. " " .. a_returns
                end },
            }
            function backoff(r)
              urlpoll.history("http://127.0.0.1:9/a", 60)
              return 7
            end
            """)
        let sut = try ScriptHost(path: script.path, history: history, logger: logger)
        let (a, b) = (sut.config.targets[0], sut.config.targets[1])
        #expect(await sut.check(a, Self.response()) == Verdict(.up, message: "polls 0"))

        // When: PostgreSQL freezes and a's check reads the history.
        try await postgres.freeze()
        let waiting = Task { await sut.check(a, Self.response()) }
        // Then: b's check runs while a's waits (it sees a's second call started, not returned), and so does
        // backoff.
        var seen = ""
        #expect(
            await eventually(within: .seconds(5)) { () async -> Bool in
                seen = (await sut.check(b, Self.response()))?.message ?? ""
                return seen != "1 1"
            })
        #expect(seen == "2 1")
        let delay = await sut.delay(for: Resource(a), settings: Settings())
        #expect(delay == .seconds(60))
        #expect(
            log.all.contains {
                $0.contains(
                    "\(script.path):13: urlpoll.history: \(location): cannot read the history of http://127.0.0.1:9/a: no answer within 1 s (is the server up and reachable, or is the statement waiting for a lock another session holds?); where Lua cannot suspend the caller (called from backoff) it waits at most 1 s"
                )
            }, "\(log.all)")
        // And a's check fails in words at its line once the read is given up (2 s).
        let verdict = await waiting.value
        #expect(
            verdict
                == Verdict(
                    .down,
                    message:
                        "\(script.path):4: urlpoll.history: \(location): cannot read the history of http://127.0.0.1:9/a: no answer within 2 s (is the server up and reachable, or is the statement waiting for a lock another session holds?)"
                ))
        try await postgres.thaw()
        #expect(await sut.check(a, Self.response()) == Verdict(.up, message: "polls 0"))
    }

    /// Issue 14 (N6): with `--store`, a URL that is neither the script's nor ever recorded (a typo) answered
    /// `polls = 0`, the empty history the check exists to prevent; `--data` raised. Both raise now, in a hook
    /// that suspends and where Lua cannot suspend (backoff); a URL the store recorded still answers.
    @Test func history_ofAURLThatIsNotTheScripts_withStore_raisesAtItsLine_unlessTheStoreRecordedIt() async throws {
        guard let postgres = try await SharedScheduleTests.ownPostgres() else { return }
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        let location = try PostgresLocation(postgres.url, environment: [:])
        let store = PostgresStore(
            location: location, connections: 2, instance: "i1", statementTimeout: .seconds(5),
            logger: PostgresStoreTests.logger)
        let pool = Task { await store.run() }
        defer { pool.cancel() }
        try await store.migrate()
        // The store recorded http://127.0.0.1:1/1 (another script's URL, or one this script listed before).
        _ = try await store.sync(PostgresStoreTests.listings(1), scriptHash: "s", now: 3_600)
        let (logger, log) = RecordingLogHandler.make()
        let script = try TemporaryScript(
            """
            urls = {
              { url = "http://127.0.0.1:9/a", check = function(res)
                  n = (n or 0) + 1
                  local target = ({ "http://127.0.0.1:9/typo", "http://127.0.0.1:1/1", "http://127.0.0.1:9/a" })[n]
                  local ok, h = pcall(urlpoll.history, target, 60)
                  return ok and "up" or "down", ok and ("polls " .. h.polls) or h
                end },
            }
            function backoff(r)
              urlpoll.history("http://127.0.0.1:9/typo", 60)
              return 7
            end
            """)
        let sut = try ScriptHost(path: script.path, history: PostgresHistory(store: store), logger: logger)
        let a = sut.config.targets[0]
        let message =
            "urlpoll.history: no URL of the script is \"http://127.0.0.1:9/typo\" and the history has none recorded (pass s.raw_url, s.url or a URL's name)"
        // When: a hook that suspends asks for a typo'd URL. Then: it raises at its line.
        #expect(await sut.check(a, Self.response()) == Verdict(.down, message: "\(script.path):5: \(message)"))
        // And where Lua cannot suspend (backoff): the same error at its line, and the default delay.
        #expect(await sut.delay(for: Resource(a), settings: Settings()) == .seconds(60))
        #expect(log.all.contains { $0.contains("\(script.path):10: \(message)") }, "\(log.all)")
        // When: it asks for a URL the store recorded, or its own. Then: an answer, no error.
        #expect(await sut.check(a, Self.response()) == Verdict(.up, message: "polls 0"))
        #expect(await sut.check(a, Self.response()) == Verdict(.up, message: "polls 0"))
    }
}
