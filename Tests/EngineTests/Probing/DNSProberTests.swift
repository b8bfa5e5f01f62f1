import Engine
import Foundation
import NIOPosix
import Testing

/// dns:// URLs against Debian's dnsmasq on a loopback high port, and against a UDP socket that never answers.
@Suite(.serialized, .timeLimit(.minutes(2))) struct DNSProberTests {
    static func probe(_ url: String, rcodes: [String]? = nil, timeout: Duration = .seconds(2)) async -> ProbeResult {
        var target = Target(url: url, timeout: timeout)
        target.rcodes = rcodes
        return await DNSProber(group: MultiThreadedEventLoopGroup.singleton).probe(target, settings: Settings())
    }

    static func reply(_ result: ProbeResult) -> ProbeResult.Reply? {
        guard case .reply(let reply) = result.outcome else { return nil }
        return reply
    }

    @Test func probe_readsEachRecordType_inPresentationForm() async throws {
        let dns = try Dnsmasq()
        defer { dns.stop() }
        let cases: [(String, String, [String])] = [
            ("www.urlpoll.test", "A", ["192.0.2.10"]),
            ("www.urlpoll.test", "AAAA", ["2001:db8::10"]),
            ("urlpoll.test", "MX", ["10 mail.urlpoll.test."]),
            ("txt.urlpoll.test", "TXT", ["v=spf1 -all"]),
        ]
        for (name, type, data) in cases {
            let result = await Self.probe("dns://\(dns.server)/\(name)?type=\(type)")
            #expect(Self.reply(result) == .init("NOERROR"), "\(name) \(type): \(result.outcome)")
            let facts = try #require(result.dns)
            #expect(facts.rcode == "NOERROR")
            #expect(facts.answers.map(\.data) == data, "\(name) \(type)")
            #expect(facts.answers.allSatisfy { $0.name == name && $0.type == type })
            #expect(facts.server == "[IPv4]127.0.0.1/127.0.0.1:\(dns.port)" || facts.server.hasSuffix(":\(dns.port)"))
        }
        let alias = await Self.probe("dns://\(dns.server)/alias.urlpoll.test?type=A")
        let answers = try #require(alias.dns?.answers)
        #expect(answers.first?.type == "CNAME")
        #expect(answers.first?.data == "www.urlpoll.test.")
        #expect(answers.last?.data == "192.0.2.10")
    }

    @Test func probe_whenTheNameDoesNotExist_isDownAsNXDOMAIN_unlessExpected() async throws {
        let dns = try Dnsmasq()
        defer { dns.stop() }
        let url = "dns://\(dns.server)/missing.urlpoll.test?type=A"
        let result = await Self.probe(url)
        #expect(result.dns?.rcode == "NXDOMAIN")
        #expect(Self.reply(result)?.health == .down)
        #expect(Self.reply(result)?.error == "rcode")
        #expect(Self.reply(result)?.detail == "missing.urlpoll.test A: NXDOMAIN")
        let expected = await Self.probe(url, rcodes: ["NOERROR", "NXDOMAIN"])
        #expect(Self.reply(expected) == .init("NXDOMAIN"))
    }

    @Test func probe_whenTheNameHasNoSuchRecord_isDownAsNoAnswer() async throws {
        let dns = try Dnsmasq()
        defer { dns.stop() }
        let result = await Self.probe("dns://\(dns.server)/www.urlpoll.test?type=SRV")
        #expect(result.dns?.rcode == "NOERROR")
        #expect(result.dns?.answers == [])
        #expect(Self.reply(result)?.error == "no_answer")
        #expect(Self.reply(result)?.detail == "www.urlpoll.test has no SRV record")
    }

    @Test func probe_whenTheServerNeverAnswers_failsAtTheTimeout() async throws {
        // A UDP socket that takes datagrams and never answers them.
        let (fd, port) = try bindLoopback(type: Int32(SOCK_DGRAM.rawValue))
        defer { close(fd) }
        let result = await Self.probe("dns://127.0.0.1:\(port)/www.urlpoll.test", timeout: .milliseconds(300))
        guard case .failure(let failure) = result.outcome else {
            Issue.record("expected a failure, got \(result.outcome)")
            return
        }
        #expect(failure.kind == .timeout)
        #expect(result.latency >= .milliseconds(300))
        #expect(result.latency < .seconds(2))
    }

    @Test func probe_whenTheServersPortIsClosed_failsAsRefused() async throws {
        let result = await Self.probe("dns://127.0.0.1:\(try closedPort())/www.urlpoll.test")
        guard case .failure(let failure) = result.outcome else {
            Issue.record("expected a failure, got \(result.outcome)")
            return
        }
        #expect(failure.kind == .refused)
        #expect(result.latency < .seconds(1))
    }
}
