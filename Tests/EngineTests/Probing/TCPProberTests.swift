import Engine
import NIOPosix
import Testing

/// tcp:// URLs against real loopback sockets: a port with a banner, a refused port, a listener that never
/// writes.
@Suite(.timeLimit(.minutes(2))) struct TCPProberTests {
    static func probe(
        _ url: String, send: String? = nil, readBack: Bool = false, timeout: Duration = .seconds(2)
    ) async -> ProbeResult {
        var target = Target(url: url, timeout: timeout)
        target.send = send.map { Array($0.utf8) }
        target.captureBody = readBack
        let prober = TCPProber(group: MultiThreadedEventLoopGroup.singleton)
        return await prober.probe(target, settings: Settings())
    }

    @Test func probe_whenThePortAccepts_isConnected_andReadsTheBannerForACheck() async throws {
        let server = try await BannerServer(banner: "SSH-2.0-OpenSSH_9.2\r\n")
        let plain = await Self.probe("tcp://127.0.0.1:\(server.port)")
        #expect(plain.outcome == .reply(.init("connected")))
        #expect(plain.body == nil)
        let read = await Self.probe("tcp://127.0.0.1:\(server.port)", readBack: true)
        #expect(read.outcome == .reply(.init("connected")))
        #expect(read.body.map { String(decoding: $0, as: UTF8.self) } == "SSH-2.0-OpenSSH_9.2\r\n")
        try await server.stop()
    }

    @Test func probe_withSend_writesIt_andReadsTheReply() async throws {
        let server = try await BannerServer(banner: "")
        let result = await Self.probe("tcp://127.0.0.1:\(server.port)/", send: "PING\r\n", readBack: true)
        #expect(result.body.map { String(decoding: $0, as: UTF8.self) } == "+PONG\r\n")
        try await server.stop()
    }

    @Test func probe_whenThePortIsClosed_failsAsRefused() async throws {
        let result = await Self.probe("tcp://127.0.0.1:\(try closedPort())")
        guard case .failure(let failure) = result.outcome else {
            Issue.record("expected a failure, got \(result.outcome)")
            return
        }
        #expect(failure.kind == .refused)
    }

    @Test func probe_whenTheListenerNeverWrites_endsAtTheTimeout_withAnEmptyBody() async throws {
        let listener = try HangingListener()
        let result = await Self.probe(
            "tcp://127.0.0.1:\(listener.port)", readBack: true, timeout: .milliseconds(300))
        #expect(result.outcome == .reply(.init("connected")))
        #expect(result.body == [])
        #expect(result.latency >= .milliseconds(300))
        #expect(result.latency < .seconds(2))
    }

    @Test func probe_whenTheNameDoesNotResolve_failsAsDNS() async throws {
        // .invalid never resolves (RFC 6761); no packet leaves the machine for it.
        let result = await Self.probe("tcp://urlpoll-test.invalid:22")
        guard case .failure(let failure) = result.outcome else {
            Issue.record("expected a failure, got \(result.outcome)")
            return
        }
        #expect(failure.kind == .dns)
        #expect(failure.detail.contains("urlpoll-test.invalid does not resolve"))
    }
}
