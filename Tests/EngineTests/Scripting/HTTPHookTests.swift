@testable import Engine
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// urlpoll.http inside hooks: requests that suspend the hook's coroutine, never the Lua state, against real
/// loopback servers (``HookServer``, ``HangingListener``).
@Suite(.timeLimit(.minutes(2))) struct HTTPHookTests {
    static func response(code: Int = 200) -> ProbeResult {
        ProbeResult(.response(code: code, reason: "OK"), latency: .milliseconds(1), body: [])
    }

    @Test func get_fromCheck_returnsCodeStatusHeadersBodyAndLatency() async throws {
        let server = HookServer()
        try await server.run { base in
            // Given: a check that calls an API and judges by its JSON.
            let (sut, script) = try loadHost(
                """
                urls = { { url = "\(base)/json", check = function(res)
                  local r, err = urlpoll.http.get("\(base)/json")
                  if not r then return "down", err end
                  local doc = urlpoll.json.decode(r.body)
                  return "up", string.format("%d|%s|%s|%s|%s", r.code, r.status, r.headers["content-type"],
                    doc.status, tostring(r.latency >= 0))
                end } }
                """)
            _ = script

            // When: the poll is checked.
            let verdict = await sut.check(sut.config.targets[0], Self.response())

            // Then: the hook got the response.
            #expect(verdict == Verdict(.up, message: "200|200 OK|application/json|ok|true"))
        }
    }

    @Test func check_waitingOnASlowServer_letsAnotherURLsCheckRunMeanwhile() async throws {
        let server = HookServer()
        try await server.run { base in
            // Given: URL a's check waits on a server that answers only when the test says; URL b's does not.
            let (sut, script) = try loadHost(
                """
                urls = {
                  { url = "\(base)/a", check = function(res)
                      local r, err = urlpoll.http.get("\(base)/slow")
                      return r and "up" or "down", r and r.body or err
                    end },
                  { url = "\(base)/b", check = function(res) return "up", "b done" end },
                }
                """)
            _ = script
            let a = sut.config.targets[0]
            let b = sut.config.targets[1]
            let waiting = Task { await sut.check(a, Self.response()) }
            var arrivals = server.arrivals.makeAsyncIterator()
            #expect(await arrivals.next() == "/slow")

            // When: b is checked while a's request is still unanswered.
            let other = await sut.check(b, Self.response())

            // Then: b's check completed, and a's completes once its server answers.
            #expect(other == Verdict(.up, message: "b done"))
            server.release()
            #expect(await waiting.value == Verdict(.up, message: "finally"))
        }
    }

    @Test func hookWaiting_onSlowServer_doesNotHoldOtherURLsPolls() async throws {
        let server = HookServer()
        try await server.run { base in
            // Given: a pool of two URLs on the real prober; a's check waits on the slow server.
            let (sut, script) = try loadHost(
                """
                pollers = 2
                urls = {
                  { url = "\(base)/json", name = "a", check = function(res)
                      local r = urlpoll.http.get("\(base)/slow")
                      return "up"
                    end },
                  { url = "\(base)/json?b", name = "b" },
                }
                """)
            _ = script
            let recorder = StateRecorder()
            let monitor = StateMonitor(
                urls: sut.config.targets.map(\.displayURL), reporter: RecordingReporter(), observers: [recorder])
            var polls = recorder.polls.makeAsyncIterator()
            let client = HTTPProber.makeClient(pollers: 2)
            let prober = HTTPProber(client: client)
            let pool = PollerPool(
                settings: sut.config.settings, targets: sut.config.targets, prober: prober, policy: LinearBackoff(),
                checker: sut.checker, monitor: monitor, clock: ContinuousClock())
            let once = Task { await pool.runOnce() }
            var arrivals = server.arrivals.makeAsyncIterator()
            #expect(await arrivals.next() == "/slow")

            // When: b's poll is recorded while a's check waits.
            let first = try #require(await polls.next())

            // Then: it is b's; a's follows once its server answers.
            #expect(first.name == "b")
            server.release()
            let states = await once.value
            #expect(states.map(\.name).sorted() == ["a", "b"])
            prober.shutdown()
            try await client.shutdown()
        }
    }

    @Test func deadline_abandonsTheHook_andJudgesThePollDown() async throws {
        let silent = try HangingListener()
        let clock = ManualClock()
        let (logger, log) = RecordingLogHandler.make()
        let script = try TemporaryScript(
            """
            urls = { { url = "\(silent.url)/", timeout = 60, check = function(res)
              local r, err = urlpoll.http.get("\(silent.url)/never")
              return "up"
            end } }
            """)
        let sut = try ScriptHost(path: script.path, clock: clock, logger: logger)
        let target = sut.config.targets[0]

        // When: the check waits on a server that never answers, and its deadline (3 × 60 s) passes.
        let checking = Task { await sut.check(target, Self.response()) }
        var sleeps = clock.sleeps.makeAsyncIterator()
        #expect(await sleeps.next() == .seconds(180))
        clock.advance(by: .seconds(180))
        let verdict = try #require(await checking.value)

        // Then: the poll is down, and the detail says the hook was abandoned, where and why.
        #expect(verdict.health == .down)
        let message = try #require(verdict.message)
        #expect(message.hasPrefix("\(script.path):2: check abandoned at its deadline of 180 s"))
        #expect(message.contains("while waiting for GET \(silent.url)/never"))
        #expect(log.all.contains { $0.contains("check abandoned at its deadline") })
        #expect(clock.pendingSleeps == 0)
    }

    @Test func requestCap_isAnErrorAtTheCallingLine() async throws {
        let server = HookServer()
        try await server.run { base in
            // Given: at most 2 requests per hook call, and a check that makes 3.
            var limits = LuaLimits()
            limits.httpRequests = 2
            let (logger, log) = RecordingLogHandler.make()
            let script = try TemporaryScript(
                """
                urls = { "\(base)/json" }
                function check(res)
                  for i = 1, 3 do
                    local r = urlpoll.http.get("\(base)/json")
                  end
                  return "up"
                end
                """)
            let sut = try ScriptHost(path: script.path, limits: limits, logger: logger)

            // When: it runs.
            let verdict = await sut.check(sut.config.targets[0], Self.response())

            // Then: the third request raises at its line; the verdict falls back to expect.
            #expect(verdict == nil)
            #expect(
                log.all.contains {
                    $0.contains(
                        "\(script.path):4: urlpoll.http.get: this check call has made 2 requests, the most one hook call may make"
                    )
                })
        }
    }

    /// Each of `urlpoll.http`'s functions raises a bad argument at the script's calling line (issue 11, item
    /// 8), caught by the script's own `pcall` or not.
    @Test(arguments: [
        ("urlpoll.http.get, 42", "bad argument #1 to 'get' (URL string expected, got number 42)"),
        (
            "urlpoll.http.post, \"http://127.0.0.1:9/\", true",
            "bad argument #2 to 'post' (string or table (sent as JSON) expected, got boolean)"
        ),
        ("urlpoll.http.request", "bad argument #1 to 'request' (table of options expected, got no value)"),
        (
            "urlpoll.http.get, \"http://127.0.0.1:65536/\"",
            "bad argument #1 to 'get' (the port must be a number from 1 to 65535 in \"http://127.0.0.1:65536/\")"
        ),
        (
            "urlpoll.http.get, \"http://127.0.0.1:9/\", { tiemout = 1 }",
            "bad argument #2 to 'get' (unknown option 'tiemout'; did you mean 'timeout'? (known options: method, url, headers, body, form, timeout, tls))"
        ),
        (
            "urlpoll.http.session().get, urlpoll.http.session(), 42",
            "bad argument #1 to 'get' (URL string expected, got number 42)"
        ),
        (
            "urlpoll.http.session().get, 42",
            "bad self to 'get' (a session expected: write s:get(…), with a colon)"
        ),
    ])
    func http_whenAnArgumentIsWrong_raisesAtTheCallingLine(call: String, message: String) async throws {
        let (sut, script) = try loadHost(
            """
            urls = { { url = "http://127.0.0.1:9/", check = function(res)
              local ok, err = pcall(\(call))
              return "down", ok and "no error" or err
            end } }
            """)
        let verdict = try #require(await sut.check(sut.config.targets[0], Self.response()))
        #expect(verdict.message == "\(script.path):2: \(message)")
    }

    @Test func http_atLoad_isALoadErrorWithFileLine() throws {
        let script = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/" }
            local r = urlpoll.http.get("http://127.0.0.1:9/")
            """)
        let error = try #require(throws: ScriptError.self) {
            _ = try ScriptHost(path: script.path, logger: Logger(label: "test"))
        }
        #expect(
            error.message.hasPrefix(
                "\(script.path):2: urlpoll.http.get cannot be called while the script loads; make requests in check"))
    }

    @Test func http_fromBackoff_isAnErrorWithFileLine_andTheDefaultApplies() async throws {
        let (logger, log) = RecordingLogHandler.make()
        let script = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/" }
            function backoff(r)
              local res = urlpoll.http.post("http://127.0.0.1:9/", "x")
              return 1
            end
            """)
        let sut = try ScriptHost(path: script.path, logger: logger)

        let delay = await sut.delay(for: Resource(sut.config.targets[0]), settings: Settings())

        #expect(delay == .seconds(60))
        #expect(
            log.all.contains {
                $0.contains("\(script.path):3: urlpoll.http.post cannot be called from backoff, which must return")
            })
    }

    @Test func hook_raisingAfterItsResponse_isLoggedWithFileLine_andTheStateStaysUsable() async throws {
        let server = HookServer()
        try await server.run { base in
            let (logger, log) = RecordingLogHandler.make()
            let script = try TemporaryScript(
                """
                urls = { "\(base)/json" }
                calls = 0
                function check(res)
                  calls = calls + 1
                  local r = urlpoll.http.get("\(base)/json")
                  if calls == 1 then error("boom after " .. r.code) end
                  return "up", "call " .. calls
                end
                """)
            let sut = try ScriptHost(path: script.path, logger: logger)
            let target = sut.config.targets[0]

            // When: the first call raises after its request is answered.
            let first = await sut.check(target, Self.response())

            // Then: the error names the line; expect decides; the next call works.
            #expect(first == nil)
            #expect(log.all.contains { $0.contains("\(script.path):6: boom after 200") })
            #expect(await sut.check(target, Self.response()) == Verdict(.up, message: "call 2"))
        }
    }

    @Test func memoryCap_insideACoroutine_stopsTheHook_andTheStateStaysUsable() async throws {
        let server = HookServer()
        try await server.run { base in
            var limits = LuaLimits()
            limits.memory = 8 << 20
            let (logger, log) = RecordingLogHandler.make()
            let script = try TemporaryScript(
                """
                urls = { "\(base)/json" }
                calls = 0
                function check(res)
                  calls = calls + 1
                  local r = urlpoll.http.get("\(base)/json")
                  if calls == 1 then
                    local t = {}
                    for i = 1, 1e8 do t[i] = i end
                  end
                  return "up", r.status
                end
                """)
            let sut = try ScriptHost(path: script.path, limits: limits, logger: logger)
            let target = sut.config.targets[0]

            #expect(await sut.check(target, Self.response()) == nil)
            #expect(log.all.contains { $0.contains("check: not enough memory (the script's limit is 8 MiB)") })
            #expect(await sut.check(target, Self.response()) == Verdict(.up, message: "200 OK"))
        }
    }

    @Test func engineStop_whileAHookWaits_abandonsItAtOnce() async throws {
        let server = HookServer()
        try await server.run { base in
            // Given: a running pool whose one URL's check waits on the slow server.
            let (sut, script) = try loadHost(
                """
                urls = { { url = "\(base)/json", check = function(res)
                  local r = urlpoll.http.get("\(base)/slow")
                  return "up"
                end } }
                """)
            _ = script
            let monitor = StateMonitor(urls: sut.config.targets.map(\.displayURL), reporter: RecordingReporter())
            let client = HTTPProber.makeClient(pollers: 2)
            let prober = HTTPProber(client: client)
            let pool = PollerPool(
                settings: sut.config.settings, targets: sut.config.targets, prober: prober, policy: LinearBackoff(),
                checker: sut.checker, monitor: monitor, clock: ContinuousClock())
            let running = Task { await pool.run() }
            var arrivals = server.arrivals.makeAsyncIterator()
            #expect(await arrivals.next() == "/slow")

            // When: the engine stops while the hook waits.
            running.cancel()
            await running.value

            // Then: no result was recorded for the abandoned check, and the script host still answers.
            #expect(await monitor.snapshot().isEmpty)
            server.release()
            #expect(await sut.check(sut.config.targets[0], Self.response()) == Verdict(.up))
            prober.shutdown()
            try await client.shutdown()
        }
    }

    /// The last report printed on a graceful stop (SIGTERM) runs `report` too; one that waits on a request
    /// is abandoned at once, as a waiting `check` is, not after the request's timeout (60 s here).
    @Test func engineStop_whileTheLastReportsHookWaits_abandonsItAtOnce() async throws {
        let server = HookServer()
        try await server.run { base in
            // Given: a running engine (a ReloadingService in a ServiceGroup, as `urlpoll run`) whose `report`
            // waits on the slow server, and whose one URL has been polled; no tick comes before the stop.
            let (sut, script) = try loadHost(
                """
                timeout = 60
                status_interval = 3600
                urls = { "\(base)/json" }
                function report(s) local r = urlpoll.http.get("\(base)/slow") end
                """)
            _ = script
            let monitor = StateMonitor(
                urls: sut.config.targets.map(\.displayURL), reporter: sut.reporter(fallback: RecordingReporter()))
            let client = HTTPProber.makeClient(pollers: 2)
            let prober = HTTPProber(client: client)
            let pool = PollerPool(
                settings: sut.config.settings, targets: sut.config.targets, prober: prober, policy: LinearBackoff(),
                checker: sut.checker, monitor: monitor, clock: ContinuousClock())
            let service = ReloadingService(pool: pool, reloads: AsyncStream { $0.finish() }) { nil }
            let services = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test")))
            let stoppedFirst = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await #expect(throws: Never.self) { try await services.run() }
                    return true
                }
                let deadline = ContinuousClock.now + .seconds(20)
                while await monitor.snapshot().isEmpty, ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(10))
                }
                #expect(await !monitor.snapshot().isEmpty)

                // When: the engine stops gracefully, and prints its last report, whose hook waits on a request.
                await services.triggerGracefulShutdown()

                // Then: the engine is done without the server answering (within 20 s, a third of the timeout).
                group.addTask {
                    try? await Task.sleep(for: .seconds(20))
                    return false
                }
                let first = await group.next()
                group.cancelAll()
                server.release()
                return first
            }
            prober.shutdown()
            try await client.shutdown()
            #expect(stoppedFirst == true, "the last report waited on its request")
        }
    }

    @Test func error_redactsTheURLsPassword() async throws {
        let (sut, script) = try loadHost(
            """
            urls = { { url = "http://127.0.0.1:9/", check = function(res)
              local r, err = urlpoll.http.get("http://probe:s3cret@127.0.0.1:9/x")
              return "down", err
            end } }
            """)
        _ = script
        let verdict = try #require(await sut.check(sut.config.targets[0], Self.response()))
        let message = try #require(verdict.message)
        #expect(message.hasPrefix("GET http://probe:xxxxx@127.0.0.1:9/x: refused: "))
        #expect(!message.contains("s3cret"))
    }

    /// TLS 1.0 and 1.1 are refused from hooks as from polls (RFC 8996), and the error says why.
    @Test func error_whenTheServerSpeaksOnlyTLS11_saysProtocolVersion() async throws {
        // Given: a server that speaks TLS 1.1 at most, and a check that calls it.
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: nil)
        let server = try await TLSServer(chain: [leaf], maximumVersion: .tlsv11)
        let (sut, script) = try loadHost(
            """
            urls = { { url = "http://127.0.0.1:9/", check = function(res)
              local r, err = urlpoll.http.get("https://127.0.0.1:\(server.port)/x")
              return "down", err
            end } }
            """)
        _ = script

        // When: the check runs.
        let verdict = try #require(await sut.check(sut.config.targets[0], Self.response()))
        try await server.stop()

        // Then: the request failed at the handshake (not at the certificate, which TLS 1.1 would reach), in words.
        let message = try #require(verdict.message)
        #expect(message.hasPrefix("GET https://127.0.0.1:\(server.port)/x: tls: protocol version: "), "\(message)")
    }

    @Test func onResultOnChangeAndReport_canMakeRequests() async throws {
        let server = HookServer()
        try await server.run { base in
            let (logger, log) = RecordingLogHandler.make()
            let (sut, script) = try loadHost(
                """
                urls = { "\(base)/json" }
                function on_result(s) assert(urlpoll.http.get("\(base)/echo?on_result").code == 200) end
                function on_change(s) assert(urlpoll.http.post("\(base)/echo?on_change", { a = 1 }).code == 200) end
                function report(s) assert(urlpoll.http.request{ url = "\(base)/echo?report" }.code == 200) end
                """, logger: logger)
            _ = script
            let state = State(url: "\(base)/json", name: "a", status: "200 OK", code: 200, health: .up)
            await sut.polled(state, previous: nil)
            await sut.changed(state, previous: nil)
            await sut.report([state])
            #expect(server.seen == ["GET /echo?on_result", "POST /echo?on_change {\"a\":1}", "GET /echo?report"])
            #expect(!log.all.contains { $0.hasPrefix("error") })
        }
    }

    @Test func session_keepsCookiesAcrossRequestsAndRedirects() async throws {
        let server = HookServer()
        try await server.run { base in
            let (sut, script) = try loadHost(
                """
                urls = { { url = "\(base)/json", check = function(res)
                  local s = urlpoll.http.session()
                  local first = s:get("\(base)/redirect-login")
                  local again = s:get("\(base)/echo")
                  local lone = urlpoll.http.get("\(base)/echo")
                  return "up", urlpoll.json.decode(first.body).cookie .. "|" .. urlpoll.json.decode(again.body).cookie
                    .. "|" .. urlpoll.json.decode(lone.body).cookie .. "|" .. s.cookies[1].name .. "|" .. first.url
                end } }
                """)
            _ = script
            let verdict = await sut.check(sut.config.targets[0], Self.response())
            #expect(verdict == Verdict(.up, message: "hop=1|hop=1||hop|\(base)/echo"))
        }
    }

    @Test func loginFlowScript_once_logsInReadsTheTokenAndCallsTheAPI() async throws {
        let server = HookServer()
        try await server.run { base in
            // When: the example script polls the server that enforces the flow (form login, cookie, token).
            let passed = try await CLIProcess.run(["once", "scripts/login-flow.lua", "--format", "json", "--", base])

            // Then: every step passed and the check says what it found.
            #expect(passed.status == 0, "\(passed.stderr)")
            #expect(passed.stdout.contains(#""detail":"3 orders, "#), "\(passed.stdout)")
            #expect(passed.stdout.contains(#""status":"401 Unauthorized""#), "\(passed.stdout)")

            // When: the login is refused.
            let process = try CLIProcess(
                ["once", "scripts/login-flow.lua", "--", base], environment: ["LOGIN_PASSWORD": "wrong"])
            let status = await process.wait()

            // Then: the poll is down and says which step failed.
            #expect(status == 1)
            #expect(process.stdout.contains("(down: login refused: 403 Forbidden)"), "\(process.stdout)")
        }
    }

    @Test func http_fromACoroutineOfTheScripts_orAYieldOfTheHooksOwn_isAnError() async throws {
        let (logger, log) = RecordingLogHandler.make()
        let script = try TemporaryScript(
            """
            urls = { "http://127.0.0.1:9/" }
            calls = 0
            function check(res)
              calls = calls + 1
              if calls == 1 then
                local ok, err = coroutine.resume(coroutine.create(function() local r = urlpoll.http.get("http://127.0.0.1:9/") return r end))
                return "down", err
              elseif calls == 2 then
                table.sort({ 2, 1 }, function(a, b) local r = urlpoll.http.get("http://127.0.0.1:9/") return a < b end)
              end
              coroutine.yield()
            end
            """)
        let sut = try ScriptHost(path: script.path, logger: logger)
        let target = sut.config.targets[0]

        // Then: a request from a coroutine the script started cannot suspend the hook: an error at its line.
        let first = await sut.check(target, Self.response())
        #expect(
            first
                == Verdict(
                    .down,
                    message:
                        "\(script.path):6: urlpoll.http.get must be called from the hook itself, not from a coroutine the script started"
                ))
        // Then: nor can one from a sort comparison (Lua cannot suspend a C function): an error at its line.
        #expect(await sut.check(target, Self.response()) == nil)
        #expect(
            log.all.contains {
                $0.contains("\(script.path):9: urlpoll.http.get cannot wait here: it was called by a C function")
            })
        // Then: a hook that yields on its own is stopped and logged; expect decides.
        #expect(await sut.check(target, Self.response()) == nil)
        #expect(log.all.contains { $0.contains("check called coroutine.yield outside a coroutine of its own") })
    }

    @Test func onResultWaiting_onSlowServer_doesNotHoldTheMonitorsTick() async throws {
        let server = HookServer()
        try await server.run { base in
            // Given: a monitor whose on_result hook waits on the slow server.
            let (sut, script) = try loadHost(
                """
                urls = { "\(base)/a" }
                function on_result(s) urlpoll.http.get("\(base)/slow") end
                """)
            _ = script
            let reporter = RecordingReporter()
            let monitor = StateMonitor(urls: ["\(base)/a"], reporter: reporter, observers: [sut])
            let state = State(url: "\(base)/a", name: "a", status: "200 OK", code: 200, health: .up)
            let updating = Task { await monitor.update(state) }
            var arrivals = server.arrivals.makeAsyncIterator()
            #expect(await arrivals.next() == "/slow")

            // When: the monitor ticks while the hook waits.
            await monitor.tick()

            // Then: the tick reported the state at once; the hook finishes once the server answers.
            var reports = reporter.reports.makeAsyncIterator()
            #expect(await reports.next()?.map(\.url) == ["\(base)/a"])
            server.release()
            await updating.value
        }
    }

    @Test func hostFunctions_calledFromAScriptsOwnCoroutine_readTheirArgumentsThere() async throws {
        // Given: urlpoll functions called inside coroutines the script starts, at load and in a hook.
        let (sut, script) = try loadHost(
            """
            urls = { "http://127.0.0.1:9/" }
            encoded_at_load = coroutine.wrap(function(a, b) return urlpoll.json.encode({ a, b }) end)(1, 2)
            function check(res)
              local inner = coroutine.wrap(function() return urlpoll.json.encode({ "in", "hook" }) end)
              return "up", encoded_at_load .. " " .. inner()
            end
            """)
        _ = script

        // Then: each read its own arguments, not those of the thread that resumed it.
        #expect(
            await sut.check(sut.config.targets[0], Self.response()) == Verdict(.up, message: #"[1,2] ["in","hook"]"#))
    }

    @Test func deadline_countsFromTheTimeoutTheEngineRunsWith() async throws {
        // Given: the script says timeout = 60; the command line (--timeout 10) overrides it.
        let silent = try HangingListener()
        let clock = ManualClock()
        let script = try TemporaryScript(
            """
            timeout = 60
            urls = { "\(silent.url)/" }
            function check(res) urlpoll.http.get("\(silent.url)/never") end
            """)
        let sut = try ScriptHost(path: script.path, clock: clock, logger: Logger(label: "test"))
        var settings = sut.config.settings
        settings.timeout = .seconds(10)
        sut.runs(with: settings)

        // When: the check waits on a server that never answers.
        let checking = Task { await sut.check(sut.config.targets[0], Self.response()) }

        // Then: its deadline is 3 × 10 s.
        var sleeps = clock.sleeps.makeAsyncIterator()
        #expect(await sleeps.next() == .seconds(30))
        clock.advance(by: .seconds(30))
        #expect(await checking.value?.message?.contains("abandoned at its deadline of 30 s") == true)
    }
}
