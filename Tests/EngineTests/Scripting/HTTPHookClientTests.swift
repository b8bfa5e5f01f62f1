@testable import Engine
import Foundation
import Testing

/// Hooks' requests go over urlpoll's own HTTP/1.1 client, as polls do: a chain that does not verify fails
/// with the reason in words, `tls = { verify, ca_file, server_name }` is honoured, odd responses a poll
/// accepts are read, and the response carries its phase timings and TLS facts. Real loopback servers: a
/// NIOSSL ``TLSServer`` presenting certificates the test issues, in front of a raw-socket ``RecordingServer``.
@Suite(.timeLimit(.minutes(2))) struct HTTPHookClientTests {
    static func response() -> ProbeResult {
        ProbeResult(.response(code: 200, reason: "OK"), latency: .milliseconds(1), body: [])
    }

    /// The message a `check` returns: `r.body`, or `err` when the request got no response.
    static func check(_ call: String, setup: String = "") async throws -> (String, TemporaryScript) {
        let (sut, script) = try loadHost(
            """
            \(setup)
            urls = { { url = "http://127.0.0.1:9/", check = function(res)
              local r, err = \(call)
              if not r then return "down", err end
              return "up", r.body
            end } }
            """)
        let verdict = await sut.check(sut.config.targets[0], Self.response())
        return (verdict?.message ?? "", script)
    }

    static let leafNotAfter: TimeInterval = 30 * 86_400

    /// Each reason a chain fails to verify, and the words the hook is given: the same as a poll's.
    @Test(arguments: [
        ("expired", "certificate expired: CN=127.0.0.1 expired at "),
        ("self-signed", "self-signed certificate: CN=127.0.0.1 is not a trusted root"),
        ("unknown CA", "unknown CA: no trusted root for CN=some private CA (certificate CN=127.0.0.1)"),
        (
            "other name",
            "unknown CA: no trusted root for CN=some private CA; hostname mismatch: the certificate is for "
                + "other.test, not 127.0.0.1 (certificate CN=other.test)"
        ),
    ])
    func get_whenTheChainDoesNotVerify_saysWhyInWords(_ case: String, words: String) async throws {
        // Given: a server presenting a chain that does not verify, for this reason.
        let ca = try TestCertificates.authority("some private CA")
        let leaf: TestCertificates.Issued
        switch `case` {
        case "expired": leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: -86_400, issuer: ca)
        case "self-signed": leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: Self.leafNotAfter, issuer: nil)
        case "unknown CA": leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: Self.leafNotAfter, issuer: ca)
        default: leaf = try TestCertificates.leaf(["other.test"], notAfter: Self.leafNotAfter, issuer: ca)
        }
        let (server, backend) = try await HTTPProberTLSTests.site([leaf])

        // When: a hook requests it.
        let (message, _) = try await Self.check(#"urlpoll.http.get("\#(server.https)/x")"#)
        try await server.stop()

        // Then: the error names the reason and the certificate, and nothing was sent.
        #expect(message.hasPrefix("GET \(server.https)/x: tls: \(words)"), "\(message)")
        #expect(!message.contains("/usr") && !message.contains("error:"), "\(message)")
        #expect(backend.requests.isEmpty)
    }

    /// `tls = { verify = false }` reaches a self-signed server; `ca_file` (beside the script) and
    /// `server_name` verify against the roots and the name given; the response says what was presented.
    @Test func request_withTLSOptions_verifiesAsTheyAsk() async throws {
        // Given: a server whose certificate, for api.internal, a private CA issued.
        let ca = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(["api.internal"], notAfter: Self.leafNotAfter, issuer: ca)
        let (server, backend) = try await HTTPProberTLSTests.site([leaf])
        let url = server.https + "/x"

        // When: hooks request it with each set of options.
        let (unverified, script) = try await Self.check(
            #"urlpoll.http.get("\#(url)", { tls = { verify = false } })"#)
        try (try ca.pem).write(toFile: script.sibling("ca.pem"), atomically: true, encoding: .utf8)
        let caFile = try TemporaryScript("")
        try (try ca.pem).write(toFile: caFile.sibling("ca.pem"), atomically: true, encoding: .utf8)
        let (verified, _) = try await Self.check(
            #"""
            urlpoll.http.request{ url = "\#(url)", tls = { ca_file = "\#(caFile.sibling("ca.pem"))",
              server_name = "api.internal" } }
            if r then r.body = r.tls.subject .. " " .. r.tls.version .. " " .. tostring(r.timings.tls > 0) end
            """#.replacingOccurrences(of: "\n  ", with: " "))
        let (wrongName, _) = try await Self.check(
            #"urlpoll.http.get("\#(url)", { tls = { ca_file = "\#(caFile.sibling("ca.pem"))" } })"#)
        try await server.stop()

        // Then: without verification and with the right roots and name it answered; with the roots alone
        // the name did not match, in words.
        #expect(unverified == "hello")
        #expect(verified == "CN=api.internal TLSv1.3 true")
        #expect(
            wrongName
                == "GET \(url): tls: hostname mismatch: the certificate is for api.internal, not 127.0.0.1 "
                + "(certificate CN=api.internal)")
        #expect(backend.requests.count == 2)
    }

    /// A bad `tls` option is an error at the calling line, with "did you mean".
    @Test func request_withABadTLSOption_isAnErrorAtItsLine() async throws {
        let (sut, script) = try loadHost(
            """
            urls = { { url = "http://127.0.0.1:9/", check = function(res)
              local _, typo = pcall(function() return urlpoll.http.get("https://127.0.0.1:9/", { tls = { verfy = false } }) end)
              local _, missing = pcall(function() return urlpoll.http.get("https://127.0.0.1:9/", { tls = { ca_file = "nope.pem" } }) end)
              return "down", typo .. "|" .. missing
            end } }
            """)
        let message = await sut.check(sut.config.targets[0], Self.response())?.message ?? ""
        let parts = message.split(separator: "|").map(String.init)
        #expect(
            parts.first
                == "\(script.path):2: bad argument #2 to 'get' (unknown option 'tls.verfy'; did you mean 'verify'? "
                + "(known options: verify, ca_file, server_name))")
        #expect(
            parts.last?.hasPrefix("\(script.path):3: bad argument #2 to 'get' (tls.ca_file: cannot read \"") == true,
            "\(message)")
    }

    /// Responses a poll accepts (RFC 9112 §2.2's bare LF, a control byte in a header value, bare-LF chunk
    /// framing), a hook's request accepts too, over http and https alike.
    @Test func get_whenTheResponseIsOddButReadable_readsItAsAPollDoes() async throws {
        // Given: a server answering with bare LFs and a control byte, plain and behind TLS.
        let server = try RecordingServer { request in
            switch request.path {
            case "/lf": [.send("HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nok")]
            case "/ctl": [.send("HTTP/1.1 200 OK\r\nX-Odd: a\u{01}b\r\nContent-Length: 3\r\n\r\nctl")]
            default: [.send("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhello\n6\n world\n0\n\n")]
            }
        }
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: Self.leafNotAfter, issuer: nil)
        let front = try await TLSServer(chain: [leaf], forwardingTo: server.port)

        // When: hooks request each, plainly and over TLS.
        var bodies: [String] = []
        for base in [server.url, front.https] {
            // (Without options on http://, with `verify = false` for the self-signed front.)
            let options = base == server.url ? "" : ", { tls = { verify = false } }"
            for path in ["/lf", "/ctl", "/chunked"] {
                let (body, _) = try await Self.check(
                    #"""
                    urlpoll.http.get("\#(base)\#(path)"\#(options))
                    if r then r.body = r.body .. "|" .. (r.headers["x-a"] or r.headers["x-odd"] or "-") end
                    """#)
                bodies.append(body)
            }
        }
        try await front.stop()

        // Then: each was read, as a poll reads it.
        let expected = ["ok|b", "ctl|a b", "hello world|-"]
        #expect(bodies == expected + expected)
    }

    /// The response table carries the phases of the exchange, as `res.timings` in `check`.
    @Test func get_returnsPhaseTimings() async throws {
        let server = try RecordingServer { request in [.ok(request)] }
        let (body, _) = try await Self.check(
            #"""
            urlpoll.http.get("\#(server.url)/t")
            if r then
              local t = r.timings
              r.body = string.format("%s %s %s", tostring(t.connect >= 0), tostring(t.processing >= 0),
                tostring(t.transfer >= 0))
            end
            """#)
        #expect(body == "true true true")
    }
}
