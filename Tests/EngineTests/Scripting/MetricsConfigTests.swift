import Engine
import Testing

/// What a script declares for the listener: `labels` per URL, `listen` and `modules`.
@Suite(.timeLimit(.minutes(2))) struct MetricsConfigTests {
    static func loadError(_ text: String) throws -> (String, TemporaryScript) {
        let script = try TemporaryScript(text)
        do {
            _ = try ScriptHost(path: script.path, logger: .init(label: "test"))
        } catch {
            return (error.message, script)
        }
        Issue.record("the script loaded")
        return ("", script)
    }

    /// Issue 14 (#14): a group of spaces only was accepted and showed as a section without a title.
    @Test func group_ofSpacesOnly_isALoadErrorWithFileLine() throws {
        let (message, script) = try Self.loadError("urls = { { url = \"http://127.0.0.1:1/\", group = \"   \" } }")
        #expect(message.hasPrefix("\(script.path):1:"))
        #expect(message.contains("field 'group' must be a string of 1 to 200 bytes, not only spaces"))
    }

    /// Issue 14 (#2): a group of invisible characters only, and NUL bytes, control characters or invalid
    /// UTF-8 in a `name`, `group` or `title`, were accepted (shown as U+FFFD on the page, `\u0000` in the
    /// JSON). They are load errors at the line, in words, as other bad fields are.
    @Test(arguments: [
        ("name = \"api\\0x\"", "field 'name' must be printable UTF-8 text (got a NUL byte at byte 4)"),
        ("name = \"caf\\xE9\"", "field 'name' must be printable UTF-8 text (got invalid UTF-8 at byte 4: 0xE9)"),
        (
            "name = \"api\\27[31m\"",
            "field 'name' must be printable UTF-8 text (got a control character, U+001B, at byte 4)"
        ),
        (
            "name = \" \"",
            "field 'name' must be a string of 1 to 200 bytes, not only spaces, the URL's name in reports, /status and on the status page (got string \" \")"
        ),
        ("group = \"core\\0\"", "field 'group' must be printable UTF-8 text (got a NUL byte at byte 5)"),
        ("group = \"\\xFF\\xFE\"", "field 'group' must be printable UTF-8 text (got invalid UTF-8 at byte 1: 0xFF)"),
        (
            "group = \"a\\nb\"",
            "field 'group' must be printable UTF-8 text (got a control character, U+000A, at byte 2)"
        ),
        ("group = \"\\u{200B}\\u{A0}\"", "field 'group' must be a string of 1 to 200 bytes, not only spaces"),
        ("group = \"\\u{3164}\"", "field 'group' must be a string of 1 to 200 bytes, not only spaces"),
    ])
    func nameAndGroup_withBytesThatAreNotText_areALoadErrorWithFileLine(field: String, message: String) throws {
        let (error, script) = try Self.loadError(
            """
            pollers = 1
            urls = { { url = "http://127.0.0.1:1/", \(field) } }
            """)
        #expect(error.hasPrefix("\(script.path):2: urls[1] (http://127.0.0.1:1/): \(message)"), "\(error)")
    }

    @Test(arguments: [
        ("\"Status\\0page\"", "setting 'title' must be printable UTF-8 text (got a NUL byte at byte 7)"),
        ("\"\\xC3\"", "setting 'title' must be printable UTF-8 text (got invalid UTF-8 at byte 1: 0xC3)"),
        ("\"a\\x85b\"", "setting 'title' must be printable UTF-8 text (got invalid UTF-8 at byte 2: 0x85)"),
        ("\"a\\u{85}b\"", "setting 'title' must be printable UTF-8 text (got a control character, U+0085, at byte 2)"),
        ("\"   \"", "setting 'title' must be a string of at most 200 bytes, not only spaces"),
    ])
    func title_withBytesThatAreNotText_isALoadErrorWithFileLine(value: String, message: String) throws {
        let (error, script) = try Self.loadError(
            """
            urls = { "http://127.0.0.1:1/" }
            title = \(value)
            """)
        #expect(error.hasPrefix("\(script.path):2: \(message)"), "\(error)")
    }

    /// Issue 14 (N7): a 1 MiB `name` was stored and served whole (every change in `/status` repeats it). A
    /// `name`, `group` or `title` over 200 bytes is a load error at its line, and the message shows the
    /// value's start and length, not the whole of it.
    @Test(arguments: ["name", "group", "title"])
    func nameGroupOrTitle_over200Bytes_isALoadErrorWithFileLine_showingItsStartOnly(field: String) throws {
        let text =
            field == "title"
            ? "urls = { \"http://127.0.0.1:1/\" }\ntitle = string.rep(\"n\", 1048576)"
            : "urls = {\n  { url = \"http://127.0.0.1:1/\", \(field) = string.rep(\"n\", 1048576) } }"
        let (error, script) = try Self.loadError(text)
        let head =
            field == "title"
            ? "setting 'title' must be a string of at most 200 bytes"
            : "field '\(field)' must be a string of 1 to 200 bytes"
        #expect(error.hasPrefix("\(script.path):2: "), "\(error.prefix(300))")
        #expect(error.contains(head), "\(error.prefix(300))")
        #expect(
            error.hasSuffix("(got string \"\(String(repeating: "n", count: 37))…\" of 1048576 bytes)"),
            "\(error.suffix(300))")
        #expect(error.utf8.count < 400)
        // 200 bytes are taken.
        let fine = try TemporaryScript(text.replacingOccurrences(of: "1048576", with: "200"))
        _ = try ScriptHost(path: fine.path, logger: .init(label: "test"))
    }

    @Test func labels_areReadSortedByName_withNumbersAsText() throws {
        let (host, _) = try loadHost(
            """
            urls = { { url = "http://127.0.0.1:1/", labels = { team = "db", tier = 2, _x = "y\\n\\"z\\"" } } }
            """)
        #expect(
            host.config.targets[0].labels == [
                MetricLabel("_x", "y\n\"z\""), MetricLabel("team", "db"), MetricLabel("tier", "2"),
            ])
    }

    @Test(arguments: [
        ("[\"team-name\"] = \"x\"", "labels: 'team-name' is not a Prometheus label name"),
        ("[\"1st\"] = \"x\"", "labels: '1st' is not a Prometheus label name"),
        ("__meta = \"x\"", "labels: '__meta' starts with __, which Prometheus reserves"),
        ("instance = \"x\"", "labels: 'instance' is set by urlpoll or Prometheus"),
        ("le = \"x\"", "labels: 'le' is set by urlpoll or Prometheus"),
        ("state = \"prod\"", "labels: 'state' is set by urlpoll or Prometheus"),
        ("phase = \"beta\"", "labels: 'phase' is set by urlpoll or Prometheus"),
        ("version = \"2\"", "labels: 'version' is set by urlpoll or Prometheus"),
        ("team = true", "labels: 'team' must be a string or a number (got true)"),
        ("team = string.rep(\"x\", 129)", "labels: the value of 'team' is 129 bytes; the most is 128"),
        ("a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1,i=1", "labels: 9 labels; a URL may have at most 8"),
    ])
    func labels_thatPrometheusWouldRefuse_areAnErrorAtTheURLsLine(entry: String, message: String) throws {
        let (error, script) = try Self.loadError(
            """
            pollers = 1
            urls = { { url = "http://127.0.0.1:1/", labels = { \(entry) } } }
            """)
        #expect(error.hasPrefix("\(script.path):2: urls[1] (http://127.0.0.1:1/): \(message)"))
    }

    @Test func luaMemory_isTheLoadedStatesSize_beforeAnyHookIsCalled() async throws {
        // Given: a script with no hooks at all, so nothing is ever called into Lua after the load.
        let script = try TemporaryScript(
            "urls = {} for i = 1, 1000 do urls[i] = \"http://127.0.0.1:1/\" .. i end")
        let metrics = EngineMetrics()
        _ = try ScriptHost(path: script.path, metrics: metrics, logger: .init(label: "test"))
        // Then: the gauge holds the state's size after the load (its 1,000 URL strings), not 0.
        let samples = try await parsePrometheus(metrics.registry.emitToString())
        let memory = try #require(samples.first { $0.name == "urlpoll_lua_memory_bytes" })
        #expect(memory.value > 20_000, "\(memory.value)")
    }

    @Test func labels_thatAreNotATable_areAnError() throws {
        let (error, _) = try Self.loadError(#"urls = { { url = "http://127.0.0.1:1/", labels = "team=db" } }"#)
        #expect(error.contains("field 'labels' must be a table of label names to strings (got string \"team=db\")"))
    }

    @Test func listenAndModules_areRead() throws {
        let (host, _) = try loadHost(
            """
            listen = "[::1]:9464"
            modules = { http_2xx = { method = "get", expect = "2xx", timeout = 2, headers = { Accept = "*/*" } } }
            urls = { "http://127.0.0.1:1/" }
            """)
        #expect(host.config.settings.listen == ListenAddress(host: "::1", port: 9464))
        let module = try #require(host.config.modules["http_2xx"])
        #expect(module.method == "GET")
        #expect(module.expect == ExpectedStatus(ranges: [200...299]))
        #expect(module.timeout == .seconds(2))
        #expect(module.headers == [Header("Accept", "*/*")])
    }

    @Test func metrics_isTheDefaultSet_orFull_andAnythingElseIsAnErrorAtItsLine() throws {
        let (plain, _) = try loadHost(#"urls = { "http://127.0.0.1:1/" }"#)
        #expect(plain.config.settings.metrics == .default)
        let (full, _) = try loadHost("urls = { \"http://127.0.0.1:1/\" }\nmetrics = \"full\"\n")
        #expect(full.config.settings.metrics == .full)
        for wrong in ["\"all\"", "true", "{ \"full\" }"] {
            let (error, script) = try Self.loadError("urls = { \"http://127.0.0.1:1/\" }\nmetrics = \(wrong)\n")
            #expect(
                error.hasPrefix("\(script.path):2: setting 'metrics' must be \"default\" or \"full\" (got "), "\(error)"
            )
        }
    }

    @Test func modules_takeTLSOptions_forTheirTLSTargets() throws {
        let (host, _) = try loadHost(
            """
            modules = { self_signed = { tls = { verify = false, cert_expiry = 7 } } }
            urls = { "tls://127.0.0.1:1" }
            """)
        let module = try #require(host.config.modules["self_signed"])
        #expect(module.tls == TLSOptions(verify: false, certExpiryDays: 7))
        #expect(module.target(url: "tls://127.0.0.1:2").tls == module.tls)
        #expect(module.target(url: "https://127.0.0.1:2/").tls == module.tls)
        #expect(module.target(url: "http://127.0.0.1:2/").tls == nil)
        let (error, script) = try Self.loadError(
            "urls = { \"tls://127.0.0.1:1\" }\nmodules = { m = { tls = { verify = \"no\" } } }\n")
        #expect(error.hasPrefix("\(script.path):2: modules.m: tls.verify must be true or false"), "\(error)")
    }

    @Test func modules_withAnUnknownField_orNotATable_areAnErrorWithTheLine() throws {
        let (unknown, script) = try Self.loadError(
            """
            urls = { "http://127.0.0.1:1/" }
            modules = {
              http_2xx = { prober = "http" },
            }
            """)
        #expect(
            unknown
                == "\(script.path):3: modules.http_2xx: unknown field 'prober' (known fields: method, timeout, headers, expect, tls)"
        )
        let (notTable, _) = try Self.loadError("urls = { \"http://127.0.0.1:1/\" }\nmodules = 1\n")
        #expect(notTable.contains(":2: 'modules' must be a table of module names to option tables (got number)"))
        let (listen, _) = try Self.loadError("urls = { \"http://127.0.0.1:1/\" }\nlisten = 9464\n")
        #expect(
            listen.contains(
                ":2: setting 'listen' must be a string HOST:PORT such as \"127.0.0.1:9464\" (got number 9464)"))
    }
}
