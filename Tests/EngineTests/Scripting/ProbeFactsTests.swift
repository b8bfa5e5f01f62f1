import Engine
import Testing

/// The tables hooks get for an HTTP poll's phase timings and exchange facts: `res.timings` and `res.http`
/// in `check`, `s.timings` and `s.http` in `report` (and `on_change`, `on_result`).
@Suite(.timeLimit(.minutes(2))) struct ProbeFactsTests {
    static let format = """
        local function facts(t, h)
          return string.format("%g %g %g %g %g | %g %s %d %d %s %s", t.resolve, t.connect, t.tls, t.processing,
            t.transfer, h.version, tostring(h.content_length), h.body_length, h.redirects, tostring(h.ssl),
            tostring(h.ip_protocol))
        end
        """

    @Test func hooks_seeTheTimingsInSeconds_andTheExchangesFacts() async throws {
        let (host, _) = try loadHost(
            Self.format + """

                urls = { "http://127.0.0.1:1/a" }
                local seen = "no report yet"
                function report(s) seen = facts(s.timings, s.http) end
                function check(res)
                  if res.timings == nil then return "up", seen end
                  return "up", facts(res.timings, res.http)
                end
                """)
        var result = ProbeResult.status(200)
        result.timings = PhaseTimings(
            resolve: .milliseconds(1), connect: .milliseconds(2), tls: .milliseconds(3), processing: .milliseconds(250),
            transfer: .milliseconds(500))
        result.http = HTTPFacts(
            version: 1.1, contentLength: nil, bodyLength: 11, redirects: 2, ssl: true, ipProtocol: 6)
        let target = host.config.targets[0]
        let expected = "0.001 0.002 0.003 0.25 0.5 | 1.1 nil 11 2 true 6"
        #expect(await host.check(target, result)?.message == expected)
        var resource = Resource(target)
        await host.report([resource.record(result, at: 0)])
        #expect(await host.check(target, .status(200))?.message == expected)
    }
}
