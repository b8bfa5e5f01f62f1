import Engine
import Logging
import Testing

/// `report(s)` gets each URL's table from the tick before with its changed fields rewritten (``ReportTables``):
/// whatever the states, a hook must see exactly the fields a new table would hold, and a reference kept from
/// an earlier tick is the URL's table, showing its newest values (docs/SCRIPTING.md, `report(s)`).
@Suite(.timeLimit(.minutes(2))) struct ReportTableTests {
    /// Writes every field of `s` (nested tables too), keys sorted, one line per report call; `check` hands
    /// the lines over as its message and starts again.
    static let dumper = """
        local function dump(v)
          if type(v) ~= "table" then return tostring(v) end
          local keys = {}
          for k in pairs(v) do keys[#keys + 1] = k end
          table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
          local out = {}
          for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. "=" .. dump(v[k]) end
          return "{" .. table.concat(out, ",") .. "}"
        end
        local lines = {}
        function report(s) lines[#lines + 1] = dump(s) end
        function check(res)
          local text = table.concat(lines, "\\n")
          lines = {}
          return "up", text
        end
        """

    /// The states of one URL over five polls: down with no response, up with timings and facts, up with
    /// other timings, a TLS and a DNS poll's facts, then down again with none of them.
    static func states(url: String) -> [State] {
        let down = State(
            url: url, name: "n", status: "timeout", health: .down, error: "timeout", detail: "no response within 5 s",
            errorCount: 1, latency: .seconds(5), polls: 1, since: 10, checkedAt: 10)
        var up = State(
            url: url, name: "n", status: "200 OK", code: 200, health: .up, latency: .milliseconds(3), polls: 2,
            since: 20, checkedAt: 20, lateness: .milliseconds(2))
        up.timings = PhaseTimings(connect: .milliseconds(1), processing: .milliseconds(2))
        up.http = HTTPFacts(contentLength: 5, bodyLength: 5, ipProtocol: 4)
        var upAgain = up
        upAgain.polls = 3
        upAgain.checkedAt = 30
        upAgain.timings = PhaseTimings(processing: .milliseconds(4), transfer: .milliseconds(1))
        var facts = upAgain
        facts.polls = 4
        facts.tls = TLSFacts(
            version: "TLSv1.3", subject: "CN=a", issuer: "CN=ca", sans: ["a"], notBefore: 0, notAfter: 86_400 * 10,
            chainNotAfter: 86_400 * 10)
        facts.dns = DNSFacts(
            rcode: "NOERROR", answers: [DNSFacts.Answer(name: "a.", type: "A", ttl: 60, data: "192.0.2.1")],
            server: "127.0.0.1")
        facts.timings = nil
        facts.http = nil
        var downAgain = down
        downAgain.polls = 5
        downAgain.checkedAt = 50
        return [down, up, upAgain, facts, downAgain]
    }

    /// What `report` saw in one tick of `states`, read back through `check`.
    static func tick(_ host: ScriptHost, _ states: [State]) async -> [String] {
        await host.report(states)
        let message = await host.check(host.config.targets[0], .status(200))?.message ?? ""
        return message.split(separator: "\n").map(String.init)
    }

    @Test func report_onEveryTick_seesTheFieldsANewTableWouldHold() async throws {
        let urls = ["http://127.0.0.1:1/a", "http://127.0.0.1:1/b"]
        let (host, _) = try loadHost("urls = { \"\(urls[0])\", \"\(urls[1])\" }\n" + Self.dumper)
        let sequences = urls.map { Self.states(url: $0) }
        for poll in 0..<5 {
            // The second URL's states run a poll behind, so the two change at different ticks.
            let tick = [sequences[0][poll], sequences[1][max(0, poll - 1)]]
            let seen = await Self.tick(host, tick)
            // A host that has never reported builds both tables new.
            let (fresh, _) = try loadHost("urls = { \"\(urls[0])\", \"\(urls[1])\" }\n" + Self.dumper)
            #expect(seen.count == 2)
            #expect(seen == (await Self.tick(fresh, tick)), "tick \(poll + 1)")
        }
    }

    @Test func report_aReferenceKeptFromAnEarlierTick_showsTheURLsNewestValues() async throws {
        let url = "http://127.0.0.1:1/a"
        let (host, _) = try loadHost(
            """
            urls = { "\(url)" }
            local kept, said = nil, "no second tick"
            function report(s)
              if kept == nil then kept = s return end
              said = string.format("same=%s polls=%d error=%s", tostring(rawequal(kept, s)), kept.polls,
                tostring(kept.error))
            end
            function check(res) return "up", said end
            """)
        let states = Self.states(url: url)
        await host.report([states[0]])
        await host.report([states[1]])
        let said = await host.check(host.config.targets[0], .status(200))?.message
        #expect(said == "same=true polls=2 error=nil")
    }

    @Test func report_withMoreURLsThanTheKeptTablesShareOfTheMemoryLimit_getsNewTablesWithTheSameFields()
        async throws
    {
        var limits = LuaLimits()
        limits.memory = 1 << 20  // tables kept for at most 256 URLs
        let urls = (0..<300).map { "http://127.0.0.1:1/u\($0)" }
        let list = urls.map { "\"\($0)\"" }.joined(separator: ", ")
        let script = try TemporaryScript(
            "urls = { \(list) }\nlocal kept\n"
                + Self.dumper.replacingOccurrences(
                    of: "function report(s) lines[#lines + 1] = dump(s) end",
                    with: "function report(s)\n  if s.index == 1 then kept = kept or s end\n"
                        + "  lines[#lines + 1] = dump(s) .. (rawequal(kept, s) and \" kept\" or \"\")\nend"))
        let host = try ScriptHost(path: script.path, limits: limits, logger: Logger(label: "test"))
        let sequences = urls.map { Self.states(url: $0) }
        for poll in 0..<3 {
            let tick = sequences.map { $0[poll] }
            let seen = await Self.tick(host, tick)
            let fresh = try ScriptHost(path: script.path, limits: limits, logger: Logger(label: "test"))
            let expected = await Self.tick(fresh, tick)
            #expect(seen.count == 300)
            // The first URL's table of the first tick is not handed out again.
            #expect(seen.filter { $0.hasSuffix(" kept") }.count == (poll == 0 ? 1 : 0))
            let unmarked = { (lines: [String]) in lines.map { $0.replacingOccurrences(of: " kept", with: "") } }
            #expect(unmarked(seen) == unmarked(expected), "tick \(poll + 1)")
        }
    }
}
