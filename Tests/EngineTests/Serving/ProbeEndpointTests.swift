import Engine
import Foundation
import Logging
import NIOPosix
import Testing

/// `/probe` on tcp://, tls:// and dns:// targets, probed for real (a banner server, an in-process NIOSSL
/// server, Debian's dnsmasq on loopback), its answer read by Prometheus' own parser.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ProbeEndpointTests {
    /// Serves a script that polls `targets` and defines one module, `connect`, and runs `body` against the
    /// listener with the real scheme prober.
    static func withProbeEndpoint(
        targets: [Target], _ body: @Sendable (_ base: String) async throws -> Void
    ) async throws {
        let source = MetricsSource()
        let monitor = StateMonitor(urls: targets.map(\.url), reporter: TextReporter(output: Output { _ in }))
        source.serve(
            monitor: monitor, targets: targets, settings: Settings(),
            modules: [
                "connect": ProbeModule(name: "connect", timeout: .seconds(2)),
                "trusting": ProbeModule(name: "trusting", timeout: .seconds(2), tls: TLSOptions(verify: false)),
            ])
        // No http target is probed here: the shared client is never used.
        let prober = try SchemeProber(http: HTTPProber(client: .shared), group: MultiThreadedEventLoopGroup.singleton)
        try await MetricsEndpointTests.withServer(source: source, metrics: EngineMetrics(), prober: prober, body)
    }

    static func probe(_ base: String, _ target: String, module: String = "connect") async throws -> [ParsedSample] {
        let encoded = target.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? target
        let answer = try await fetch(base + "/probe?module=\(module)&target=" + encoded)
        #expect(answer.status == 200, "\(answer.body)")
        let samples = try await parsePrometheus(answer.body)
        #expect(samples.allSatisfy { $0.labels.isEmpty || Array($0.labels.keys) == ["version"] })
        return samples
    }

    @Test func probe_ofATCPPort_succeedsWhenItConnects_andFailsWhenRefused() async throws {
        let server = try await BannerServer(banner: "SSH-2.0-test")
        let refused = "tcp://127.0.0.1:\(try closedPort())"
        try await Self.withProbeEndpoint(targets: [Target(url: "tcp://127.0.0.1:1")]) { base in
            let up = try await Self.probe(base, "tcp://127.0.0.1:\(server.port)")
            #expect(up.first { $0.name == "probe_success" }?.value == 1)
            #expect((up.first { $0.name == "probe_duration_seconds" }?.value ?? -1) >= 0)
            // Not an HTTP probe: no HTTP status code, no TLS or DNS families.
            #expect(!up.contains { $0.name.hasPrefix("probe_http_") || $0.name.hasPrefix("probe_dns_") })
            let down = try await Self.probe(base, refused)
            #expect(down.first { $0.name == "probe_success" }?.value == 0)
        }
        try await server.stop()
    }

    @Test func probe_ofATLSPort_reportsTheCertificate_evenWhenNotTrusted_andTheModulesTLSOptionsApply() async throws {
        let ca = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: ca)
        let server = try await TLSServer(chain: [leaf])
        try await Self.withProbeEndpoint(targets: [Target(url: "tls://127.0.0.1:1")]) { base in
            let samples = try await Self.probe(base, server.url)
            // The test CA is not one of the system's roots, so the probe fails, and still says what it saw.
            #expect(samples.first { $0.name == "probe_success" }?.value == 0)
            let expiry = try #require(samples.first { $0.name == "probe_ssl_earliest_cert_expiry" }?.value)
            #expect(abs(expiry - leaf.certificate.notValidAfter.timeIntervalSince1970) < 1)
            let version = samples.first { $0.name == "probe_tls_version_info" }
            #expect(version?.labels == ["version": "TLS 1.3"])
            #expect(version?.value == 1)
            // A module that trusts any certificate (blackbox's insecure_skip_verify): a success.
            let trusted = try await Self.probe(base, server.url, module: "trusting")
            #expect(trusted.first { $0.name == "probe_success" }?.value == 1)
            #expect(trusted.first { $0.name == "probe_ssl_earliest_cert_expiry" }?.value == expiry)
        }
        try await server.stop()
    }

    @Test func probe_ofADNSName_givesTheSectionCounts_andWhetherTheQuerySucceeded() async throws {
        let dns = try Dnsmasq()
        defer { dns.stop() }
        try await Self.withProbeEndpoint(targets: [Target(url: "dns://127.0.0.1/x?type=A")]) { base in
            let found = try await Self.probe(base, "dns://\(dns.server)/www.urlpoll.test?type=A")
            #expect(found.first { $0.name == "probe_success" }?.value == 1)
            #expect(found.first { $0.name == "probe_dns_query_succeeded" }?.value == 1)
            #expect(found.first { $0.name == "probe_dns_answer_rrs" }?.value == 1)
            #expect(found.first { $0.name == "probe_dns_authority_rrs" } != nil)
            #expect(found.first { $0.name == "probe_dns_additional_rrs" } != nil)
            #expect(!found.contains { $0.name == "probe_http_status_code" })

            let missing = try await Self.probe(base, "dns://\(dns.server)/missing.urlpoll.test?type=A")
            #expect(missing.first { $0.name == "probe_success" }?.value == 0)
            #expect(missing.first { $0.name == "probe_dns_query_succeeded" }?.value == 1)
            #expect(missing.first { $0.name == "probe_dns_answer_rrs" }?.value == 0)

            let silent = try await Self.probe(base, "dns://127.0.0.1:\(try closedPort())/www.urlpoll.test?type=A")
            #expect(silent.first { $0.name == "probe_success" }?.value == 0)
            #expect(silent.first { $0.name == "probe_dns_query_succeeded" }?.value == 0)
        }
    }
}
