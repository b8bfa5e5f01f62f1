import Engine
import Testing

/// Odd real servers (issue 10), on both HTTP paths: the plain-HTTP client (`plain: true`) and
/// AsyncHTTPClient (`plain: false`). Each expected value is what curl and Go's net/http do.
@Suite(.timeLimit(.minutes(2))) struct OddServerTests {
    /// Polls `targets` in order with one prober on the chosen path.
    static func probe(_ targets: [Target], plain: Bool, settings: Settings = Settings()) async throws -> [ProbeResult] {
        let client = HTTPProber.makeClient(pollers: 2)
        var configuration = HTTPProber.Configuration()
        configuration.usesPlainHTTPClient = plain
        configuration.userAgent = "urlpoll/test"
        let sut = HTTPProber(client: client, configuration: configuration)
        var results: [ProbeResult] = []
        for target in targets { results.append(await sut.probe(target, settings: settings)) }
        sut.shutdown()
        try await client.shutdown()
        return results
    }

    static func probe(_ target: Target, plain: Bool, settings: Settings = Settings()) async throws -> ProbeResult {
        try await Self.probe([target], plain: plain, settings: settings)[0]
    }

    // MARK: 1. One URL's server must not poison another URL's result

    /// `/page` answers HEAD with `Content-Length: 15`, then sends the 15 bytes anyway, 0.2 s later; `/ok` is
    /// healthy and on the same connection. Each URL is judged by its own response.
    @Test(arguments: [true, false])
    func probe_whenAHEADResponseIsFollowedByItsBody_judgesTheNextURLByItsOwnResponse(plain: Bool) async throws {
        let server = try RecordingServer { request in
            if request.path == "/page" {
                return [
                    .send("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n"), .pause(.milliseconds(200)),
                    .send("stray body 15 b"),
                ]
            }
            return [.ok(request, body: "")]
        }
        let targets = (0..<3).flatMap { _ in [Target(url: server.url + "/page"), Target(url: server.url + "/ok")] }
        let results = try await Self.probe(targets, plain: plain)
        for (target, result) in zip(targets, results) {
            #expect(result.outcome == .response(code: 200, reason: "OK"), "\(target.url) plain=\(plain)")
        }
    }

    // MARK: 2. Redirects: one request per hop, one deadline, method rewriting

    @Test(arguments: [true, false])
    func probe_followsARedirect_withOneRequestPerHop_andTheWholePollsLatency(plain: Bool) async throws {
        let server = try RecordingServer { request in
            switch request.path {
            case "/a":
                [.pause(.milliseconds(300)), .ok(request, body: "", status: "302 Found", extra: ["Location: /b"])]
            default: [.pause(.milliseconds(300)), .ok(request)]
            }
        }
        let result = try await Self.probe(Target(url: server.url + "/a", timeout: .seconds(5)), plain: plain)
        #expect(result.outcome == .response(code: 200, reason: "OK"))
        #expect(server.requests.map(\.lines[0]) == ["HEAD /a HTTP/1.1", "HEAD /b HTTP/1.1"])
        #expect(result.latency >= .milliseconds(600))
    }

    @Test(.timeLimit(.minutes(1)), arguments: [true, false])
    func probe_whenRedirectHopsTogetherPassTheTimeout_failsAsTimeoutWithinIt(plain: Bool) async throws {
        let server = try RecordingServer { request in
            switch request.path {
            case "/a":
                [.pause(.milliseconds(600)), .ok(request, body: "", status: "302 Found", extra: ["Location: /b"])]
            default: [.pause(.seconds(2)), .ok(request)]
            }
        }
        let result = try await Self.probe(Target(url: server.url + "/a", timeout: .seconds(1)), plain: plain)
        #expect(result.outcome == .failure(ProbeFailure(.timeout, detail: "no response within 1 s")))
        // One deadline over both hops: about 1 s. A fresh one per hop (the fault) would make it 1.6 s.
        #expect(result.latency >= .seconds(1))
        #expect(result.latency < .milliseconds(1450))
        #expect(server.requests.map(\.lines[0]) == ["HEAD /a HTTP/1.1", "HEAD /b HTTP/1.1"])
    }

    /// (status, method) → the second hop's method and whether the body goes with it, as net/http and curl.
    @Test(arguments: [
        (303, "POST", "GET", false), (303, "PUT", "GET", false), (301, "POST", "GET", false),
        (302, "POST", "GET", false), (307, "POST", "POST", true), (308, "POST", "POST", true),
        (302, "PUT", "PUT", true), (303, "HEAD", "HEAD", false),
    ])
    func probe_whenRedirected_changesTheMethodAsNetHTTPDoes_andNeverRepeatsAPOST(
        code: Int, method: String, next: String, keepsBody: Bool
    ) async throws {
        for plain in [true, false] {
            let server = try RecordingServer { request in
                request.path == "/a"
                    ? [.ok(request, body: "", status: "\(code) Moved", extra: ["Location: /b"])] : [.ok(request)]
            }
            var target = Target(url: server.url + "/a", method: method)
            target.body = method == "HEAD" ? nil : "{\"x\":1}"
            let result = try await Self.probe(target, plain: plain)
            #expect(result.outcome == .response(code: 200, reason: "OK"), "plain=\(plain)")
            let requests = server.requests
            #expect(requests.map(\.lines[0]) == ["\(method) /a HTTP/1.1", "\(next) /b HTTP/1.1"], "plain=\(plain)")
            if requests.count == 2 {
                #expect(requests[1].body == (keepsBody ? Array("{\"x\":1}".utf8) : []), "plain=\(plain)")
            }
        }
    }

    @Test(arguments: [true, false])
    func probe_whenRedirectsLoopOrGoOnPastFive_failsAsRedirect(plain: Bool) async throws {
        let server = try RecordingServer { request -> [RecordingServer.Step] in
            let next = request.path == "/loop" ? "/loop" : "/\((Int(request.path.dropFirst()) ?? 0) + 1)"
            return [.ok(request, body: "", status: "302 Found", extra: ["Location: \(next)"])]
        }
        let results = try await Self.probe(
            [Target(url: server.url + "/loop"), Target(url: server.url + "/0")], plain: plain)
        #expect(
            results[0].outcome
                == .failure(ProbeFailure(.redirect, detail: "redirect loop (back to \(server.url)/loop)")))
        #expect(results[1].outcome == .failure(ProbeFailure(.redirect, detail: "more than 5 redirects")))
        #expect(server.requests.count == 1 + 6)
    }

    /// A redirect to a port out of 1…65535 (`Location: http://127.0.0.1:99999/x`) fails the poll in words;
    /// it used to trap the whole process where the port met a 16-bit socket port.
    @Test(arguments: [true, false])
    func probe_whenRedirectedToAPortOutOfRange_failsAsRedirectInWords(plain: Bool) async throws {
        let server = try RecordingServer { request in
            [.ok(request, body: "", status: "302 Found", extra: ["Location: http://127.0.0.1:99999/x"])]
        }
        let results = try await Self.probe([Target(url: server.url + "/a")], plain: plain)
        #expect(
            results[0].outcome
                == .failure(
                    ProbeFailure(
                        .redirect,
                        detail: "a redirect to a URL that cannot be followed (not http or https, or a port out of "
                            + "1–65535): http://127.0.0.1:99999/x")))
    }

    // MARK: 3. Credentials in the URL

    @Test(arguments: [true, false])
    func probe_whenTheURLHasCredentials_sendsThemAsBasicAuth(plain: Bool) async throws {
        let server = try RecordingServer { request in
            // "probe:pa ss" in base64 (RFC 7617); the URL percent-encodes the space.
            request.header("Authorization") == ["Basic cHJvYmU6cGEgc3M="]
                ? [.ok(request)] : [.ok(request, body: "", status: "401 Unauthorized")]
        }
        let url = "http://probe:pa%20ss@127.0.0.1:\(server.port)/status"
        let target = Target(url: url)
        let result = try await Self.probe(target, plain: plain)
        #expect(result.outcome == .response(code: 200, reason: "OK"))
        #expect(target.displayURL == "http://probe:xxxxx@127.0.0.1:\(server.port)/status")
        #expect(target.name == target.displayURL)
    }

    /// A redirect to another host (here: another port, as curl judges it) drops the credentials, and the
    /// script's `Authorization`; one to the same host keeps them.
    @Test(arguments: [true, false])
    func probe_whenRedirectedToAnotherHost_dropsTheCredentials(plain: Bool) async throws {
        let other = try RecordingServer { request in [.ok(request)] }
        let server = try RecordingServer { request in
            switch request.path {
            case "/a": [.ok(request, body: "", status: "302 Found", extra: ["Location: /b"])]
            case "/b": [.ok(request, body: "", status: "302 Found", extra: ["Location: \(other.url)/c"])]
            default: [.ok(request)]
            }
        }
        var target = Target(url: "http://probe:secret@127.0.0.1:\(server.port)/a")
        target.headers = [Header("X-Trace", "1")]
        let result = try await Self.probe(target, plain: plain)
        #expect(result.outcome == .response(code: 200, reason: "OK"))
        #expect(
            server.requests.map { $0.header("Authorization") } == [
                ["Basic cHJvYmU6c2VjcmV0"], ["Basic cHJvYmU6c2VjcmV0"],
            ])
        #expect(other.requests.map { $0.header("Authorization") } == [[]])
        #expect(other.requests.map { $0.header("X-Trace") } == [["1"]])
    }

    // MARK: 4, 5. Framing and Host; both paths send the same bytes

    /// The same URLs through both paths, to one recording server: the requests match line by line.
    @Test func probe_sendsTheSameBytesOnBothPaths() async throws {
        let server = try RecordingServer { request in [.ok(request)] }
        func targets() -> [Target] {
            var post = Target(url: server.url + "/post", method: "POST")
            post.headers = [Header("Accept", "application/json")]
            var put = Target(url: server.url + "/put", method: "PUT")
            put.body = "{\"state\":\"on\"}"
            let patch = Target(url: server.url + "/patch?x=1", method: "PATCH")
            let host = Target(url: server.url + "/host", headers: [Header("Host", "example.test"), Header("X-A", "b")])
            let get = Target(url: server.url + "/get", method: "GET")
            let agent = Target(url: server.url + "/agent", headers: [Header("User-Agent", "mine/1")])
            let auth = Target(url: "http://u:p@127.0.0.1:\(server.port)/auth")
            return [Target(url: server.url), post, put, patch, host, get, agent, auth]
        }
        _ = try await Self.probe(targets(), plain: true)
        let plain = server.requests
        _ = try await Self.probe(targets(), plain: false)
        let other = Array(server.requests.dropFirst(plain.count))
        #expect(plain.count == 8)
        for (a, b) in zip(plain, other) {
            #expect(a.lines == b.lines)
            #expect(a.body == b.body)
        }
        let authority = "127.0.0.1:\(server.port)"
        #expect(
            plain.map(\.lines) == [
                ["HEAD / HTTP/1.1", "Host: \(authority)", "User-Agent: urlpoll/test"],
                [
                    "POST /post HTTP/1.1", "Host: \(authority)", "User-Agent: urlpoll/test", "Accept: application/json",
                    "Content-Length: 0",
                ],
                ["PUT /put HTTP/1.1", "Host: \(authority)", "User-Agent: urlpoll/test", "Content-Length: 14"],
                ["PATCH /patch?x=1 HTTP/1.1", "Host: \(authority)", "User-Agent: urlpoll/test", "Content-Length: 0"],
                ["HEAD /host HTTP/1.1", "Host: example.test", "User-Agent: urlpoll/test", "X-A: b"],
                ["GET /get HTTP/1.1", "Host: \(authority)", "User-Agent: urlpoll/test"],
                ["HEAD /agent HTTP/1.1", "Host: \(authority)", "User-Agent: mine/1"],
                ["HEAD /auth HTTP/1.1", "Host: \(authority)", "User-Agent: urlpoll/test", "Authorization: Basic dTpw"],
            ])
        #expect(plain[2].body == Array("{\"state\":\"on\"}".utf8))
    }

    // MARK: 6. Lenient parsing

    /// A bare LF ends a line (RFC 9112 §2.2), and a control byte in a header value is kept; curl and
    /// net/http accept both.
    @Test(arguments: [true, false])
    func probe_whenTheResponseIsOddButReadable_acceptsIt(plain: Bool) async throws {
        // Bare LF throughout, then a control byte in a header value, then bare LF again on the same
        // (kept) connection.
        let server = try RecordingServer { request in
            switch request.path {
            case "/lf": [.send("HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nok")]
            case "/ctl": [.send("HTTP/1.1 200 OK\r\nX-Odd: a\u{01}b\r\nContent-Length: 2\r\n\r\nok")]
            default: [.ok(request)]
            }
        }
        let targets = ["/lf", "/ctl", "/lf"].map { Target(url: server.url + $0, method: "GET") }
        let results = try await Self.probe(targets, plain: plain)
        let expected = Array(repeating: ProbeResult.Outcome.response(code: 200, reason: "OK"), count: 3)
        if plain {
            #expect(results.map(\.outcome) == expected)
        } else {
            // NIOHTTP1 does not expose llhttp's lenient flags and AsyncHTTPClient takes no extra handlers, so
            // AsyncHTTPClient cannot read them; polls no longer go through it (`probe_overHTTPS_…` shows
            // https:// on urlpoll's own client), only the tests' switch does.
            withKnownIssue("AsyncHTTPClient's parser cannot be made lenient") {
                #expect(results.map(\.outcome) == expected)
            }
        }
    }

    /// A chunked body whose framing lines (chunk sizes, the CRLF after each chunk, the trailer section) end
    /// in a bare LF (RFC 9112 §2.2, §7.1), as curl accepts it; the body reads whole, and the kept connection
    /// then carries a well-formed chunked response, a HEAD answered `Transfer-Encoding: chunked` (no body),
    /// and the odd one again.
    @Test func probe_whenAChunkedBodysFramingLinesEndInABareLF_readsTheBody() async throws {
        let server = try RecordingServer { request in
            switch request.path {
            case "/lf":
                [
                    .send("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhello\n6;ext=1\n world\n0\nX-T: 1\n\n")
                ]
            case "/crlf":
                [.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")]
            default:
                [.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")]
            }
        }
        func target(_ path: String, _ method: String = "GET") -> Target {
            var target = Target(url: server.url + path, method: method, timeout: .seconds(2))
            // (With its body kept, a poll turns a HEAD into a GET.)
            target.captureBody = method != "HEAD"
            return target
        }
        let results = try await Self.probe(
            [target("/lf"), target("/crlf"), target("/head", "HEAD"), target("/lf")], plain: true)
        #expect(results.map(\.outcome) == Array(repeating: .response(code: 200, reason: "OK"), count: 4))
        #expect(
            results.map { $0.body.map { String(decoding: $0, as: UTF8.self) } } == [
                "hello world", "ok", nil, "hello world",
            ])
        #expect(server.connections == 1)
    }

    /// The same odd responses over `https://` (TLS in front of the same server), on urlpoll's own client:
    /// read as curl reads them, as on `http://`.
    @Test func probe_overHTTPS_readsOddResponsesAsOnHTTP() async throws {
        let server = try RecordingServer { request in
            switch request.path {
            case "/lf": [.send("HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nok")]
            case "/ctl": [.send("HTTP/1.1 200 OK\r\nX-Odd: a\u{01}b\r\nContent-Length: 2\r\n\r\nok")]
            default: [.send("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhello\n6\n world\n0\n\n")]
            }
        }
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: nil)
        let front = try await TLSServer(chain: [leaf], forwardingTo: server.port)
        let targets = ["/lf", "/ctl", "/chunked", "/lf"].map { path in
            var target = Target(url: front.https + path, method: "GET", timeout: .seconds(5))
            target.tls = TLSOptions(verify: false)
            target.captureBody = true
            return target
        }
        let results = try await Self.probe(targets, plain: true)
        #expect(results.map(\.outcome) == Array(repeating: .response(code: 200, reason: "OK"), count: 4))
        #expect(results[2].body.map { String(decoding: $0, as: UTF8.self) } == "hello world")
        #expect(results.allSatisfy { $0.http?.ssl == true })
        #expect(server.connections == 1)
        try await front.stop()
    }

    /// Where a response is refused, the detail says what was wrong in words.
    @Test(arguments: [true, false])
    func probe_whenTheResponseIsRefused_saysWhyInWords(plain: Bool) async throws {
        let server = try RecordingServer { request in
            switch request.path {
            case "/garbage": [.send("SSH-2.0-OpenSSH_9.2\r\n\r\n"), .close]
            default: [.send("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"), .close]
            }
        }
        for path in ["/garbage", "/length"] {
            let result = try await Self.probe(Target(url: server.url + path), plain: plain)
            guard case .failure(let failure) = result.outcome else {
                Issue.record("expected a failure, got \(result)")
                continue
            }
            #expect(failure.kind == .badResponse, "\(path)")
            #expect(!failure.detail.contains("http_parser"), "\(path): \(failure.detail)")
            #expect(!failure.detail.lowercased().contains("unknown"), "\(path): \(failure.detail)")
        }
    }
}
