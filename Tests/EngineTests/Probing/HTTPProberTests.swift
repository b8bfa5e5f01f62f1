import Engine
import Foundation
import Testing

/// The real prober against a real HTTP server on loopback.
@Suite(.timeLimit(.minutes(2))) struct HTTPProberTests {
    static func probe(_ url: String, method: String? = nil, timeout: Duration? = nil) async throws -> ProbeResult {
        let client = HTTPProber.makeClient(pollers: 2)
        let sut = HTTPProber(client: client)
        let result = await sut.probe(Target(url: url, method: method, timeout: timeout), settings: Settings())
        try await client.shutdown()
        return result
    }

    @Test func probe_whenTheServerAnswers_reportsTheStatusLine() async throws {
        try await withDemoSite { (base) async throws in
            #expect(try await Self.probe(base + "/healthy").outcome == .response(code: 200, reason: "OK"))
            #expect(
                try await Self.probe(base + "/failing", method: "GET").outcome
                    == .response(code: 500, reason: "Internal Server Error"))
            #expect(try await Self.probe(base + "/status/404").outcome == .response(code: 404, reason: "Not Found"))
        }
    }

    @Test func probe_followsRedirects() async throws {
        try await withDemoSite { (base) async throws in
            #expect(try await Self.probe(base + "/redirect").outcome == .response(code: 200, reason: "OK"))
        }
    }

    @Test func probe_whenThePortIsClosed_failsAsRefused() async throws {
        let result = try await Self.probe("http://127.0.0.1:\(try closedPort())/")
        guard case .failure(let failure) = result.outcome else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(failure.kind == .refused)
        // In words, not NIO's "connection reset (error set): Connection refused (errno: 111)".
        #expect(failure.detail == "the server refused the connection: Connection refused (errno \(ECONNREFUSED))")
    }

    @Test func probe_whenTheServerNeverAnswers_failsAsTimeoutWithinTheTimeout() async throws {
        let server = try HangingListener()
        do {
            for method in ["HEAD", "GET"] {
                let result = try await Self.probe(server.url + "/", method: method, timeout: .milliseconds(300))
                #expect(result.outcome == .failure(ProbeFailure(.timeout, detail: "no response within 0.3 s")))
                #expect(result.latency >= .milliseconds(300))
                #expect(result.latency < .seconds(5))
            }
        }
    }
}
