@testable import Engine
import Logging
import Testing

@Suite(.timeLimit(.minutes(2))) struct LuaLimitsTests {
    @Test func limits_areConfigurable() async throws {
        // Given: a 1 MiB memory cap and 10,000 instructions per hook call.
        var limits = LuaLimits()
        limits.memory = 1 << 20
        limits.hookInstructions = 10_000
        let script = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/" }
            function backoff(r)
              local n = 0
              for i = 1, r.error_count * 100000 do n = n + 1 end
              return 1
            end
            """)
        let (logger, log) = RecordingLogHandler.make()
        let sut = try ScriptHost(path: script.path, limits: limits, logger: logger)
        var resource = Resource(sut.config.targets[0])

        // Then: a short call passes; a long one is stopped and the default applies.
        #expect(await sut.delay(for: resource, settings: Settings()) == .seconds(1))
        resource.record(.failed(.refused), at: 0)
        #expect(await sut.delay(for: resource, settings: Settings()) == .seconds(70))
        #expect(log.all.contains { $0.contains("instruction budget exceeded") })

        let big = try TemporaryScript("local s = string.rep('x', 4 << 20)\nurls = { 'http://127.0.0.1:9/' }\n")
        let error = try #require(throws: ScriptError.self) {
            _ = try ScriptHost(path: big.path, limits: limits, logger: logger)
        }
        #expect(error.kind == .memory)
    }

    @Test func load_whenTheURLListOutgrowsTheMemoryLimit_saysToRaiseIt() throws {
        // Given: a script listing 100,000 URLs (about 10 MiB of Lua strings and table) under a 4 MiB cap.
        var limits = LuaLimits()
        limits.memory = 4 << 20
        let script = try TemporaryScript(
            "urls = {}\nfor i = 1, 100000 do urls[i] = 'http://127.0.0.1:9/many/' .. i end\n")
        // Then: loading fails in words that name the limit and the option that raises it.
        let error = try #require(throws: ScriptError.self) {
            _ = try ScriptHost(path: script.path, limits: limits, logger: Logger(label: "test"))
        }
        #expect(error.kind == .memory)
        #expect(
            error.description.contains(
                "not enough memory (the script's limit is 4 MiB; raise it with --lua-memory, as in --lua-memory 16"),
            "\(error)")
    }
}
