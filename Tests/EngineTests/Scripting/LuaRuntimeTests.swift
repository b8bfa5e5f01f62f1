@testable import Engine
import Logging
import Testing

@Suite(.timeLimit(.minutes(2))) struct LuaRuntimeTests {
    static func loadError(_ text: String) throws -> (ScriptError, TemporaryScript) {
        let script = try TemporaryScript(text)
        let error = try #require(throws: ScriptError.self) {
            _ = try ScriptHost(path: script.path, logger: Logger(label: "test"))
        }
        return (error, script)
    }

    /// A setting or hook whose name is misspelt was silently ignored (`stor = "postgresql://…"` ran alone
    /// instead of in a fleet): it is warned about at load, with its line; the script's own globals are not.
    @Test func load_whenAGlobalIsANearMissOfASettingOrHook_warnsWithItsLine() throws {
        let (host, script) = try loadHost(
            """
            pollerz = 8
            stor = "postgresql://u@127.0.0.1:5432/db"
            function reprot(s) end
            function helper() end
            counts = {}
            urls = { "http://127.0.0.1:9/" }
            """)
        let warnings = host.config.warnings
        #expect(
            warnings
                == [
                    "\(script.path):1: global 'pollerz' is not a setting urlpoll reads; did you mean 'pollers'?",
                    "\(script.path):2: global 'stor' is not a setting urlpoll reads; did you mean 'store'?",
                    "\(script.path):3: global 'reprot' is not a hook urlpoll calls; did you mean 'report'?",
                ].sorted())
    }

    @Test func load_whenStoreAndDataAreBothSet_isAnErrorAtTheStoreLine() throws {
        let (error, script) = try Self.loadError(
            "urls = {}\ndata = \"/tmp/h\"\nstore = \"postgresql://u@127.0.0.1:5432/x\"\n")
        #expect(error.kind == .configuration)
        #expect(
            error.message.hasPrefix("\(script.path):3: settings 'store' and 'data' do not go together"),
            "\(error.message)")
    }

    @Test func load_whenSyntaxError_reportsFileAndLine() throws {
        let (error, script) = try Self.loadError("urls = {}\nx = = 1\n")
        #expect(error.kind == .syntax)
        #expect(error.message == "\(script.path):2: unexpected symbol near '='")
    }

    @Test func load_whenRuntimeError_reportsFileLine_andTraceback() throws {
        let (error, script) = try Self.loadError("local t = nil\n\nprint(t.field)\n")
        #expect(error.kind == .runtime)
        #expect(error.message == "\(script.path):3: attempt to index a nil value (local 't')")
        #expect(error.traceback?.contains("in main chunk") == true)
    }

    @Test func load_whenFileIsMissing_saysSo() throws {
        let error = try #require(throws: ScriptError.self) {
            _ = try ScriptHost(path: "/nonexistent/urlpoll.lua", logger: Logger(label: "test"))
        }
        #expect(error.message == "cannot open /nonexistent/urlpoll.lua: No such file or directory")
    }

    @Test func hostFunction_whenItRaises_isCaughtByLuaPcall_withTheCallersFileLine() throws {
        // Given: a script that calls urlpoll.log with a bad level inside pcall, then reports what it caught.
        let (error, script) = try Self.loadError(
            """
            local ok, err = pcall(function()
              urlpoll.log("loud", "x")
            end)
            if ok then error("pcall did not catch the error") end
            error("caught: " .. err, 0)
            """)
        // Then: the error was raised into Lua (not across Swift), and Lua's pcall caught it.
        #expect(
            error.message
                == "caught: \(script.path):2: bad argument #1 to 'log' (expected \"debug\", \"info\", \"warning\" "
                + "or \"error\", got string \"loud\")")
    }

    @Test func load_whenTheScriptLoopsForever_isStoppedByTheBudget() throws {
        let (error, script) = try Self.loadError("urls = {}\nwhile true do end\n")
        #expect(error.kind == .budget)
        #expect(error.message == "\(script.path):2: instruction budget exceeded")
    }

    @Test func hook_whenItLoopsForeverInsideItsOwnPcall_isStillStopped() async throws {
        // Given: a backoff that tries to swallow the budget error.
        let (logger, log) = RecordingLogHandler.make()
        let (sut, script) = try loadHost(
            """
            urls = { "http://127.0.0.1:9/" }
            function backoff(r)
              while true do pcall(function() while true do end end) end
            end
            """, logger: logger)

        let delay = await sut.delay(for: Resource(sut.config.targets[0]), settings: Settings())

        #expect(delay == .seconds(60))
        #expect(log.all.contains { $0.contains("\(script.path):3: instruction budget exceeded") })
    }

    @Test func load_whenAFinalizerIsSet_isRefused_becauseFinalizersEscapeTheBudget() throws {
        let (error, script) = try Self.loadError(
            "urls = { \"http://127.0.0.1/\" }\nsetmetatable({}, { __gc = function() while true do end end })\n")
        #expect(
            error.message
                == "\(script.path):2: __gc metamethods are not supported: finalizers run outside the instruction budget"
        )
    }

    @Test func hook_whenItGrowsMemoryWithoutEnd_isStopped_andTheStateStaysUsable() async throws {
        let (logger, log) = RecordingLogHandler.make()
        let (sut, _) = try loadHost(
            """
            urls = { "http://127.0.0.1:9/" }
            local calls = 0
            function backoff(r)
              calls = calls + 1
              if calls == 1 then
                local t = {}
                for i = 1, 1e9 do t[i] = i end
              end
              return 5
            end
            """, logger: logger)
        let resource = Resource(sut.config.targets[0])

        #expect(await sut.delay(for: resource, settings: Settings()) == .seconds(60))
        #expect(log.all.contains { $0.contains("not enough memory") })
        #expect(await sut.delay(for: resource, settings: Settings()) == .seconds(5))
    }

    @Test(arguments: [
        ("pollers = 0", "setting 'pollers' must be an integer from 1 to 10000 (got number 0)"),
        ("pollers = 2.5", "setting 'pollers' must be an integer from 1 to 10000 (got number 2.5)"),
        ("timeout = -1", "setting 'timeout' must be a number of seconds from 0.001 to 3600 (got number -1)"),
        (
            "poll_interval = \"x\"",
            "setting 'poll_interval' must be a number of seconds from 0 to 86400 (got string \"x\")"
        ),
        (
            "method = \"FETCH\"",
            "setting 'method' must be one of GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH (got string \"FETCH\")"
        ),
        ("backoff = 5", "'backoff' must be a function (got number)"),
    ])
    func load_whenASettingIsWrong_namesTheSettingAndLine(line: String, message: String) throws {
        let (error, script) = try Self.loadError("urls = { \"http://127.0.0.1/\" }\n\(line)\n")
        #expect(error.kind == .configuration)
        #expect(error.message == "\(script.path):2: \(message)")
    }

    @Test(arguments: [
        ("\"not a url\"", 3, "urls[2]: not a URL: \"not a url\""),
        (
            "\"ftp://example.com/\"", 3,
            "urls[2]: unsupported scheme \"ftp\" in \"ftp://example.com/\" (expected http, https, tcp, tls or dns)"
        ),
        ("\"http://127.0.0.1/a\"", 3, "urls[2]: duplicate URL \"http://127.0.0.1/a\" (also urls[1])"),
        (
            "{ url = \"http://127.0.0.1/b\", retries = 3 }", 3,
            "urls[2] (http://127.0.0.1/b): unknown field 'retries' (known fields:"
        ),
        (
            "{ url = \"http://127.0.0.1/b\", timout = 3 }", 3,
            "urls[2] (http://127.0.0.1/b): unknown field 'timout'; did you mean 'timeout'?"
        ),
        (
            "{ url = \"http://127.0.0.1/b\", timeout = \"2\" }", 3,
            "urls[2] (http://127.0.0.1/b): field 'timeout' must be a number of seconds from 0.001 to 3600 (got string \"2\")"
        ),
        (
            "{ url = \"http://127.0.0.1/b\", expect = { 200, \"abc\" } }", 3,
            "urls[2] (http://127.0.0.1/b): field 'expect' must be"
        ),
        (
            "{ url = \"http://127.0.0.1/b\", headers = { [\"X-A\"] = \"a\\r\\nInjected: 1\" } }", 3,
            "urls[2] (http://127.0.0.1/b): field 'headers': the value of 'X-A' holds a line break or NUL"
        ),
        (
            "{ url = \"http://127.0.0.1/b\", headers = { [\"Bad Name:\"] = \"v\" } }", 3,
            "urls[2] (http://127.0.0.1/b): field 'headers': \"Bad Name:\" is not a header name"
        ),
        ("42", 0, "urls[2]: expected a URL string or a table (got number 42)"),
    ])
    func load_whenAURLEntryIsWrong_namesTheEntryAndLine(entry: String, line: Int, message: String) throws {
        let (error, script) = try Self.loadError("urls = {\n  \"http://127.0.0.1/a\",\n  \(entry),\n}\n")
        #expect(error.kind == .configuration)
        let location = line > 0 ? "\(script.path):\(line): " : "\(script.path): "
        #expect(error.message.hasPrefix(location + message), "\(error.message)")
    }

    @Test func load_whenALongListOfTableEntriesHasAWrongOne_namesItsLine() throws {
        // Given: 3,000 table entries, one per line after `urls = {`, the 2,500th misspelling a field and the
        // 2,999th repeating the first URL. (Loading time is measured in bench/, not here.)
        func entries(wrong: Int?, duplicate: Int?) -> String {
            var text = "urls = {\n"
            for i in 1...3_000 {
                let url = i == duplicate ? "http://127.0.0.1/t/1" : "http://127.0.0.1/t/\(i)"
                text += "  { url = \"\(url)\", name = \"t\(i)\"\(i == wrong ? ", timout = 1" : "") },\n"
            }
            return text + "}\n"
        }
        let (misspelt, script) = try Self.loadError(entries(wrong: 2_500, duplicate: nil))
        #expect(misspelt.message.hasPrefix("\(script.path):2501: urls[2500] (http://127.0.0.1/t/2500): unknown field"))
        let (repeated, other) = try Self.loadError(entries(wrong: nil, duplicate: 2_999))
        #expect(
            repeated.message
                == "\(other.path):3000: urls[2999]: duplicate URL \"http://127.0.0.1/t/1\" (also urls[1])")
    }

    @Test func load_readsPerURLOptions() throws {
        let (host, _) = try loadHost(
            """
            method = "get"
            urls = {
              "http://127.0.0.1/plain",
              { url = "http://127.0.0.1/api", name = "api", method = "POST", timeout = 2, interval = 15,
                headers = { Authorization = "Bearer x", ["X-Count"] = 3 }, expect = { 200, "3xx", "401-403" } },
            }
            """)
        let config = host.config
        #expect(config.settings.method == "GET")
        #expect(config.targets.map(\.url) == ["http://127.0.0.1/plain", "http://127.0.0.1/api"])
        let api = config.targets[1]
        #expect(api.name == "api")
        #expect(api.method == "POST")
        #expect(api.timeout == .seconds(2))
        #expect(api.interval == .seconds(15))
        #expect(api.headers == [Header("Authorization", "Bearer x"), Header("X-Count", "3")])
        #expect(api.expect.ranges == [200...200, 300...399, 401...403])
        #expect(config.settings.interval(for: config.targets[0]) == .seconds(60))
    }

    @Test func load_whenURLsIsAFunction_callsIt_andReadsFilesAndArgs() throws {
        let list = try TemporaryScript("http://127.0.0.1/one\n\nhttp://127.0.0.1/two\n", name: "urls.txt")
        let (host, _) = try loadHost(
            """
            function urls()
              local list = {}
              for line in io.lines(urlpoll.args[1]) do
                if line ~= "" then list[#list + 1] = line end
              end
              return list
            end
            """, args: [list.path])
        #expect(host.config.targets.map(\.url) == ["http://127.0.0.1/one", "http://127.0.0.1/two"])
    }

    @Test func load_whenURLsIsMissing_saysHowToSetIt() throws {
        let (error, script) = try Self.loadError("pollers = 3\n")
        #expect(error.message == "\(script.path): 'urls' is not set; add urls = { \"http://127.0.0.1:8080/\" }")
    }

    @Test func urlpollTable_hasVersionArgsAndNow() throws {
        let (host, _) = try loadHost(
            """
            assert(urlpoll.version == "\(urlpollVersion)")
            assert(urlpoll.args[1] == "a" and urlpoll.args[2] == "b" and #urlpoll.args == 2)
            assert(math.abs(urlpoll.now() - os.time()) < 5)
            urls = { "http://127.0.0.1/" }
            """, args: ["a", "b"])
        #expect(host.config.targets.count == 1)
    }
}
