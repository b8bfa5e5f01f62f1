import Engine
import Foundation
import NIOPosix
import Synchronization
import Testing

/// What the text report and the JSON lines say of tls:// and dns:// URLs, from real probes (an in-process
/// NIOSSL server, Debian's dnsmasq), and the JSON objects of an HTTP poll's facts.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ReportFormatTests {
    /// The text report of `states`, as `urlpoll run` prints it.
    static func text(_ states: [State]) async -> String {
        let printed = Mutex("")
        await TextReporter(output: Output { text in printed.withLock { $0 += text } }).report(states)
        return printed.withLock { $0 }
    }

    /// Polls `target` once with the real probers and records the result as the pool does.
    static func poll(_ target: Target) async throws -> State {
        let prober = try SchemeProber(
            http: HTTPProber(client: .shared), group: MultiThreadedEventLoopGroup.singleton)
        var resource = Resource(target)
        return resource.record(await prober.probe(target, settings: Settings()), at: Date().timeIntervalSince1970)
    }

    @Test func textReport_whenATLSCertificateIsWithinCertExpiry_saysDegraded_andShowsTheCertificate() async throws {
        let ca = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 3 * 86_400 - 60, issuer: ca)
        let server = try await TLSServer(chain: [leaf])
        var target = Target(url: server.url, timeout: .seconds(2))
        target.tls = TLSOptions(roots: [ca.certificate], certExpiryDays: 14)
        let state = try await Self.poll(target)
        try await server.stop()
        #expect(state.health == .degraded)

        let text = await Self.text([state])
        let line = try #require(text.split(separator: "\n").last.map(String.init))
        #expect(line.hasPrefix(" \(server.url) TLSv1.3 (degraded: the certificate expires in 2 days, at "), "\(line)")
        #expect(line.hasSuffix(" [CN=127.0.0.1, 2 days left]"), "\(line)")
    }

    @Test func textReport_showsEachKindsFacts_andWhyItIsDown_butLeavesTheSeedsLinesAsTheyWere() async throws {
        let dns = try Dnsmasq()
        defer { dns.stop() }
        let found = try await Self.poll(Target(url: "dns://\(dns.server)/alias.urlpoll.test?type=A"))
        let missing = try await Self.poll(Target(url: "dns://\(dns.server)/missing.urlpoll.test?type=A"))
        let text = await Self.text([found, missing])
        #expect(
            text.contains(" dns://\(dns.server)/alias.urlpoll.test?type=A NOERROR [www.urlpoll.test., 192.0.2.10]\n"))
        #expect(
            text.contains(
                " dns://\(dns.server)/missing.urlpoll.test?type=A NXDOMAIN (down: missing.urlpoll.test A: NXDOMAIN)\n"),
            "\(text)")

        // The seed's lines: a status outside expect, a failure kind, an up URL.
        let seed = await Self.text([
            State(
                url: "http://a/", name: "a", status: "500 Internal Server Error", code: 500, health: .down,
                error: "status", detail: "status 500 is not in expect 200-399"),
            State(url: "http://b/", name: "b", status: "refused", health: .down, error: "refused", detail: "refused"),
            State(url: "http://c/", name: "c", status: "200 OK", code: 200, health: .up),
        ])
        #expect(seed == "Current state:\n http://a/ 500 Internal Server Error\n http://b/ refused\n http://c/ 200 OK\n")
    }

    @Test func jsonLine_gainsTheFactsObjects_afterItsFields_whichStayAsTheyWere() throws {
        var state = State(
            url: "https://127.0.0.1:9/", name: "n", status: "200 OK", code: 200, health: .up,
            latency: .milliseconds(50),
            since: 1_800_000_000, checkedAt: 1_800_000_000)
        let before = JSONReporter.line(event: "report", state)
        #expect(
            before
                == #"{"event":"report","url":"https://127.0.0.1:9/","name":"n","status":"200 OK","state":"up","code":200,"ok":true,"error":null,"detail":null,"error_count":0,"latency":0.05,"polls":1,"since":1800000000,"checked_at":1800000000,"lateness":0}"#
        )
        state.tls = TLSFacts(
            version: "TLSv1.3", subject: "CN=a", issuer: "CN=CA", sans: ["a", "127.0.0.1"], notBefore: 1_700_000_000,
            notAfter: 1_800_000_000 + 10 * 86_400, chainNotAfter: 1_800_000_000 + 20 * 86_400)
        state.timings = PhaseTimings(processing: .milliseconds(40), transfer: .milliseconds(10))
        state.http = HTTPFacts(version: 1.1, contentLength: nil, bodyLength: 3, redirects: 1, ssl: true, ipProtocol: 4)
        let after = JSONReporter.line(event: "report", state)
        #expect(after.hasPrefix(String(before.dropLast()) + ","), "the existing fields keep their order and form")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(after.utf8)) as? [String: Any])
        let tls = try #require(object["tls"] as? [String: Any])
        #expect(tls["subject"] as? String == "CN=a")
        #expect(tls["sans"] as? [String] == ["a", "127.0.0.1"])
        #expect(tls["days_left"] as? Int == 10)
        let chain = try #require((tls["chain_not_after"] as? NSNumber)?.doubleValue)
        #expect(chain == 1_801_728_000)
        let timings = try #require(object["timings"] as? [String: NSNumber]).mapValues(\.doubleValue)
        #expect(timings == ["resolve": 0, "connect": 0, "tls": 0, "processing": 0.04, "transfer": 0.01])
        let http = try #require(object["http"] as? [String: Any])
        #expect((http["version"] as? NSNumber)?.doubleValue == 1.1)
        #expect(http["content_length"] is NSNull)
        #expect(http["redirects"] as? Int == 1)
        #expect(http["ssl"] as? Bool == true)
        #expect(http["ip_protocol"] as? Int == 4)
        #expect(object["dns"] == nil)

        var named = State(url: "dns://127.0.0.1/a", name: "a", status: "NOERROR", health: .up)
        named.dns = DNSFacts(
            rcode: "NOERROR", answers: [.init(name: "a", type: "A", ttl: 60, data: "192.0.2.1")],
            server: "127.0.0.1:53",
            authorityCount: 0, additionalCount: 1)
        let line = JSONReporter.line(event: "change", named, previous: .some(nil))
        let dnsObject = try #require(
            (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["dns"] as? [String: Any])
        #expect(dnsObject["rcode"] as? String == "NOERROR")
        #expect(dnsObject["additional_count"] as? Int == 1)
        let answers = try #require(dnsObject["answers"] as? [[String: Any]])
        #expect(answers.first?["data"] as? String == "192.0.2.1")
        #expect(answers.first?["ttl"] as? Int == 60)
        #expect(line.contains(#""prev_status":null,"prev_state":null,"dns":{"#))
    }
}
