import Engine
import Testing

/// The connections of urlpoll's own HTTP client: kept alive between polls, and replaced when the server has
/// dropped them.
@Suite(.timeLimit(.minutes(2))) struct HTTPProberConnectionTests {
    @Test func probe_pollsTheSameHostAgain_onTheSameConnection() async throws {
        let server = try RecordingServer.keepAlive()
        let client = HTTPProber.makeClient(pollers: 2)
        let sut = HTTPProber(client: client)
        for (i, method) in ["HEAD", "GET", "HEAD", "GET"].enumerated() {
            let result = await sut.probe(Target(url: server.url + "/\(i)", method: method), settings: Settings())
            #expect(result.outcome == .response(code: 200, reason: "OK"))
        }
        #expect(server.requests.count == 4)
        #expect(server.connections == 1)
        sut.shutdown()
        try await client.shutdown()
    }

    /// On `http://`, and on `https://` (TLS in front of the same server, closing with a close_notify).
    @Test(arguments: [false, true])
    func probe_whenTheServerDroppedTheIdleConnection_sendsItAgainOnANewOne(https: Bool) async throws {
        let server = try RecordingServer.keepAlive(dropsIdleConnections: true)
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: nil)
        let front = https ? try await TLSServer(chain: [leaf], forwardingTo: server.port) : nil
        let client = HTTPProber.makeClient(pollers: 2)
        let sut = HTTPProber(client: client)
        for i in 0..<5 {
            var target = Target(url: (front?.https ?? server.url) + "/\(i)")
            if https { target.tls = TLSOptions(verify: false) }
            let result = await sut.probe(target, settings: Settings())
            #expect(result.outcome == .response(code: 200, reason: "OK"))
        }
        try await front?.stop()
        // Polls 2 to 5 each went to the previous poll's connection, found it closed, and went again on a new one.
        #expect(server.requests.filter { $0.indexOnConnection == 0 }.count == 5)
        #expect(server.connections == 5)
        sut.shutdown()
        try await client.shutdown()
    }

    @Test func probe_keepsAtMostTheBodyCap() async throws {
        let server = try RecordingServer.keepAlive(bodySize: 50_000)
        let client = HTTPProber.makeClient(pollers: 2)
        var configuration = HTTPProber.Configuration()
        configuration.maximumBodySize = 1000
        let sut = HTTPProber(client: client, configuration: configuration)
        var target = Target(url: server.url + "/big", method: "GET")
        target.captureBody = true
        for _ in 0..<2 {
            let result = await sut.probe(target, settings: Settings())
            #expect(result.outcome == .response(code: 200, reason: "OK"))
            #expect(result.body.map { Array($0.prefix(5)) } == Array("hello".utf8))
            #expect(result.body?.count == 1000)
        }
        // The rest of a capped body is not read, so its connection is not used again.
        #expect(server.connections == 2)
        sut.shutdown()
        try await client.shutdown()
    }

    @Test func probe_keepsAtMostTheIdleCap_acrossHosts() async throws {
        let servers = try (0..<4).map { _ in try RecordingServer.keepAlive() }
        let client = HTTPProber.makeClient(pollers: 2)
        var configuration = HTTPProber.Configuration()
        configuration.idleConnections = 2
        let sut = HTTPProber(client: client, configuration: configuration)
        for server in servers {
            let result = await sut.probe(Target(url: server.url + "/"), settings: Settings())
            #expect(result.outcome == .response(code: 200, reason: "OK"))
        }
        #expect(sut.idleConnections == 2)
        #expect(await eventually { servers.map(\.open).reduce(0, +) == 2 })
        sut.shutdown()
        #expect(await eventually { servers.map(\.open).reduce(0, +) == 0 })
        try await client.shutdown()
    }

    /// Shutdown cancels polls; one cancelled before it starts closes its kept-alive connection before the
    /// request is written, and must still end, without opening a new connection (issue 11, item 10).
    @Test(.timeLimit(.minutes(1))) func probe_whenCancelledBeforeItStarts_onAKeptConnection_ends() async throws {
        let server = try RecordingServer.keepAlive()
        let client = HTTPProber.makeClient(pollers: 2)
        let sut = HTTPProber(client: client)
        _ = await sut.probe(Target(url: server.url + "/"), settings: Settings())
        #expect(sut.idleConnections == 1)
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await sut.probe(Target(url: server.url + "/"), settings: Settings())
        }
        let result = await cancelled.value
        guard case .failure = result.outcome else {
            Issue.record("expected the cancelled poll to fail, got \(result)")
            return
        }
        // The cancellation closed the kept connection; it is not taken for a stale one and retried.
        #expect(server.connections == 1)
        #expect(server.requests.count == 1)
        sut.shutdown()
        try await client.shutdown()
    }

    @Test func probe_closesAConnectionLeftIdleForTheIdleTimeout() async throws {
        let server = try RecordingServer.keepAlive()
        let client = HTTPProber.makeClient(pollers: 2)
        var configuration = HTTPProber.Configuration()
        configuration.idleTimeout = .milliseconds(200)
        let sut = HTTPProber(client: client, configuration: configuration)
        let result = await sut.probe(Target(url: server.url + "/"), settings: Settings())
        #expect(result.outcome == .response(code: 200, reason: "OK"))
        #expect(await eventually { server.open == 0 && sut.idleConnections == 0 })
        // The next poll makes a new connection.
        _ = await sut.probe(Target(url: server.url + "/"), settings: Settings())
        #expect(server.connections == 2)
        sut.shutdown()
        try await client.shutdown()
    }
}
