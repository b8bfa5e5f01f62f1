import Engine
import Testing

/// Per-phase timings (``PhaseTimings``) and exchange facts (``HTTPFacts``) of polls on urlpoll's own client,
/// on `http://` and `https://` (TLS in front of the same ``RecordingServer``): a server that pauses before
/// its head and before its body shows those pauses as processing and transfer; a kept-alive connection
/// has no resolve, connect or TLS phase; redirects add up.
@Suite(.timeLimit(.minutes(2))) struct PhaseTimingsTests {
    /// The server's pauses: before the head, and between the head and the body.
    static let beforeHead = Duration.milliseconds(200)
    static let beforeBody = Duration.milliseconds(300)
    /// How much less than a pause a phase may measure: the client times the head and the body as it reads
    /// them, and the head may wait a little longer than the body to be read (the event loop, the TLS relay).
    static let slack = Duration.milliseconds(10)

    /// `server` as an `http://` origin, or behind TLS as an `https://` one (self-signed, `verify = false`).
    static func origin(_ server: RecordingServer, https: Bool) async throws -> (String, TLSServer?) {
        guard https else { return (server.url, nil) }
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: nil)
        let front = try await TLSServer(chain: [leaf], forwardingTo: server.port)
        return (front.https, front)
    }

    static func probe(_ urls: [String], https: Bool) async throws -> [ProbeResult] {
        let client = HTTPProber.makeClient(pollers: 1)
        let sut = HTTPProber(client: client)
        var results: [ProbeResult] = []
        for url in urls {
            var target = Target(url: url, method: "GET", timeout: .seconds(5))
            if https { target.tls = TLSOptions(verify: false) }
            results.append(await sut.probe(target, settings: Settings()))
        }
        sut.shutdown()
        try await client.shutdown()
        return results
    }

    @Test(arguments: [false, true])
    func probe_whenTheServerPausesBeforeItsHeadAndItsBody_timesThemAsProcessingAndTransfer(https: Bool)
        async throws
    {
        let server = try RecordingServer { _ in
            [
                .pause(Self.beforeHead), .send("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"),
                .pause(Self.beforeBody), .send("hello world"),
            ]
        }
        let (origin, front) = try await Self.origin(server, https: https)
        let results = try await Self.probe([origin + "/slow", origin + "/slow"], https: https)
        #expect(results.map(\.outcome) == [.response(code: 200, reason: "OK"), .response(code: 200, reason: "OK")])
        let first = try #require(results[0].timings)
        #expect(first.processing >= Self.beforeHead - Self.slack, "\(first)")
        #expect(first.transfer >= Self.beforeBody - Self.slack, "\(first)")
        #expect(first.processing < Self.beforeHead + Self.beforeBody, "the body's pause is not processing: \(first)")
        #expect(first.resolve == .zero, "an address literal needs no lookup")
        #expect(first.connect > .zero)
        #expect((first.tls > .zero) == https, "\(first)")
        // The second poll reuses the kept-alive connection: no resolve, connect or TLS phase.
        let second = try #require(results[1].timings)
        #expect(server.connections == 1)
        #expect(second.resolve == .zero)
        #expect(second.connect == .zero)
        #expect(second.tls == .zero)
        #expect(second.processing >= Self.beforeHead - Self.slack, "\(second)")
        #expect(second.transfer >= Self.beforeBody - Self.slack, "\(second)")
        let http = try #require(results[0].http)
        #expect(
            http == HTTPFacts(version: 1.1, contentLength: 11, bodyLength: 11, redirects: 0, ssl: https, ipProtocol: 4))
        try await front?.stop()
    }

    /// Each hop's phases add up; `redirects` counts the hops after the first.
    @Test(arguments: [false, true])
    func probe_whenRedirected_sumsThePhasesOverTheHops(https: Bool) async throws {
        let server = try RecordingServer { request in
            switch request.path {
            case "/a":
                [.pause(Self.beforeHead), .ok(request, body: "", status: "302 Found", extra: ["Location: /b"])]
            default:
                [.pause(Self.beforeHead), .send("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")]
            }
        }
        let (origin, front) = try await Self.origin(server, https: https)
        let result = try await Self.probe([origin + "/a"], https: https)[0]
        #expect(result.outcome == .response(code: 200, reason: "OK"))
        let timings = try #require(result.timings)
        #expect(timings.processing >= Self.beforeHead * 2 - Self.slack, "\(timings)")
        let http = try #require(result.http)
        #expect(http.redirects == 1)
        #expect(http.version == 1.0)
        #expect(http.contentLength == 2)
        #expect(http.ssl == https)
        try await front?.stop()
    }

    /// A host name is looked up (on urlpoll's own threads) and the lookup timed as the resolve phase.
    @Test func probe_whenTheHostIsAName_timesItsLookup() async throws {
        let server = try RecordingServer { request in [.ok(request)] }
        let result = try await Self.probe(["http://localhost:\(server.port)/"], https: false)[0]
        #expect(result.outcome == .response(code: 200, reason: "OK"))
        #expect(try #require(result.timings).resolve > .zero)
        #expect(result.http?.ipProtocol == 4)
    }
}
