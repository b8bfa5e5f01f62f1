import Engine
import Testing

/// Servers that hang, trickle, reset, lie or loop: every poll ends within its timeout with a short kind.
@Suite(.timeLimit(.minutes(2))) struct HostileServerTests {
    static func probe(_ url: String, method: String = "HEAD", timeout: Duration = .seconds(2)) async throws
        -> (ProbeFailure.Kind?, Duration)
    {
        let result = try await HTTPProberTests.probe(url, method: method, timeout: timeout)
        guard case .failure(let failure) = result.outcome else { return (nil, result.latency) }
        return (failure.kind, result.latency)
    }

    @Test(arguments: [
        ("/reset", ProbeFailure.Kind.reset),
        ("/garbage", .badResponse),
        ("/huge-headers", .badResponse),
        ("/trickle", .timeout),
        ("/short", .reset),
    ])
    func probe_whenTheServerMisbehaves_failsWithinTheTimeout(path: String, kind: ProbeFailure.Kind) async throws {
        let server = try RecordingServer.misbehaving()
        for method in ["HEAD", "GET"] {
            if path == "/short" && method == "HEAD" { continue }  // a HEAD response has no body to cut short
            let (failure, latency) = try await Self.probe(server.url + path, method: method, timeout: .seconds(1))
            #expect(failure == kind, "\(method) \(path)")
            #expect(latency < .seconds(2), "\(method) \(path)")
        }
    }

    @Test func probe_whenRedirectsLoop_failsAsRedirect() async throws {
        try await withDemoSite { (base) async throws in
            let (failure, _) = try await Self.probe(base + "/loop")
            #expect(failure == .redirect)
        }
    }

    @Test func probe_whenTheNameDoesNotResolve_failsAsDNS() async throws {
        // .invalid never resolves (RFC 6761); no packet leaves the machine for it.
        let (failure, _) = try await Self.probe("http://urlpoll-test.invalid/")
        #expect(failure == .dns)
    }
}
