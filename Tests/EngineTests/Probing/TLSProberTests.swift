import Engine
import Foundation
import NIOPosix
import NIOSSL
import Testing

/// tls:// URLs against an in-process NIOSSL server presenting certificates the test issues: valid,
/// expiring in 3 days, expired, self-signed, for another name, from an unknown CA, and with an
/// intermediate that expires before the leaf.
@Suite(.timeLimit(.minutes(2))) struct TLSProberTests {
    static func probe(_ server: TLSServer, _ options: TLSOptions) async throws -> ProbeResult {
        var target = Target(url: server.url, timeout: .seconds(2))
        target.tls = options
        return try await TLSProber(group: MultiThreadedEventLoopGroup.singleton).probe(target, settings: Settings())
    }

    static func failure(_ result: ProbeResult) -> ProbeFailure? {
        guard case .failure(let failure) = result.outcome else { return nil }
        return failure
    }

    @Test func probe_whenTheChainIsValid_isUp_withTheCertificatesFacts() async throws {
        let ca = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(["localhost", "127.0.0.1"], notAfter: 90 * 86_400, issuer: ca)
        let server = try await TLSServer(chain: [leaf])
        let result = try await Self.probe(server, TLSOptions(roots: [ca.certificate], certExpiryDays: 14))
        #expect(result.outcome == .reply(.init("TLSv1.3")))
        let tls = try #require(result.tls)
        #expect(tls.version == "TLSv1.3")
        #expect(tls.subject == "CN=localhost")
        #expect(tls.issuer == "CN=urlpoll test CA")
        #expect(tls.sans == ["localhost", "127.0.0.1"])
        // Whole days left, rounded down (X.509 times have whole seconds, so "now" is not exact here).
        #expect(tls.daysLeft(at: tls.notAfter - 89.5 * 86_400) == 89)
        #expect(tls.chainNotAfter == tls.notAfter)
        #expect(abs(tls.notAfter - (Date().timeIntervalSince1970 + 90 * 86_400)) < 60)
        try await server.stop()
    }

    /// TLS 1.0 and 1.1 are refused (RFC 8996), even with `verify = false`: the failure says so in words.
    @Test func probe_whenTheServerSpeaksOnlyTLS11_isATLSFailure_sayingProtocolVersion() async throws {
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: nil)
        let server = try await TLSServer(chain: [leaf], maximumVersion: .tlsv11)
        let result = try await Self.probe(server, TLSOptions(verify: false))
        try await server.stop()
        let failure = try #require(Self.failure(result), "expected a failure, got \(result.outcome)")
        #expect(failure.kind == .tls)
        #expect(failure.detail.hasPrefix("protocol version: "), "\(failure.detail)")
    }

    @Test func probe_whenTheLeafExpiresWithinCertExpiry_isDegraded() async throws {
        let ca = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 3 * 86_400 - 60, issuer: ca)
        let server = try await TLSServer(chain: [leaf])
        let result = try await Self.probe(server, TLSOptions(roots: [ca.certificate], certExpiryDays: 14))
        guard case .reply(let reply) = result.outcome else {
            Issue.record("expected a reply, got \(result.outcome)")
            return
        }
        #expect(reply.health == .degraded)
        #expect(reply.error == "cert_expiry")
        #expect(reply.detail?.hasPrefix("the certificate expires in 2 days, at ") == true, "\(reply.detail ?? "")")
        // Without cert_expiry, the same certificate is simply up.
        let plain = try await Self.probe(server, TLSOptions(roots: [ca.certificate]))
        #expect(plain.outcome == .reply(.init("TLSv1.3")))
        try await server.stop()
    }

    @Test func probe_whenAnIntermediateExpiresBeforeTheLeaf_reportsTheChainsExpiry() async throws {
        let root = try TestCertificates.authority()
        // 4 days and 23 hours: whole days left are 4 however X.509 rounds the time to seconds.
        let intermediate = try TestCertificates.leaf(
            ["urlpoll intermediate"], notAfter: 5 * 86_400 - 3_600, issuer: root, authority: true)
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 60 * 86_400, issuer: intermediate)
        let server = try await TLSServer(chain: [leaf, intermediate])
        let result = try await Self.probe(server, TLSOptions(roots: [root.certificate], certExpiryDays: 14))
        let tls = try #require(result.tls)
        #expect(tls.chainNotAfter == intermediate.certificate.notValidAfter.timeIntervalSince1970)
        #expect(tls.notAfter == leaf.certificate.notValidAfter.timeIntervalSince1970)
        guard case .reply(let reply) = result.outcome else {
            Issue.record("expected a reply, got \(result.outcome)")
            return
        }
        #expect(reply.health == .degraded)
        #expect(
            reply.detail?.hasPrefix("a certificate of the chain expires in 4 days") == true, "\(reply.detail ?? "")")
        try await server.stop()
    }

    @Test func probe_whenTheCertificateExpired_failsAsTLS_andStillReportsIt() async throws {
        let ca = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: -86_400 + 3_600, issuer: ca)
        let server = try await TLSServer(chain: [leaf])
        let result = try await Self.probe(server, TLSOptions(roots: [ca.certificate]))
        let failure = try #require(Self.failure(result))
        #expect(failure.kind == .tls)
        #expect(failure.detail.hasPrefix("certificate expired: CN=127.0.0.1 expired at "), "\(failure.detail)")
        #expect(try #require(result.tls).daysLeft(at: Date().timeIntervalSince1970) == -1)
        try await server.stop()
    }

    @Test func probe_whenSelfSigned_failsAsTLS_unlessVerifyIsOff() async throws {
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: nil)
        let server = try await TLSServer(chain: [leaf])
        let failure = try #require(Self.failure(try await Self.probe(server, TLSOptions())))
        #expect(failure.kind == .tls)
        #expect(failure.detail == "self-signed certificate: CN=127.0.0.1 is not a trusted root")
        let unverified = try await Self.probe(server, TLSOptions(verify: false))
        #expect(unverified.outcome == .reply(.init("TLSv1.3")))
        #expect(unverified.tls?.subject == "CN=127.0.0.1")
        try await server.stop()
    }

    @Test func probe_whenTheNameDiffers_failsAsHostnameMismatch() async throws {
        let ca = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(["other.test"], notAfter: 30 * 86_400, issuer: ca)
        let server = try await TLSServer(chain: [leaf])
        let result = try await Self.probe(server, TLSOptions(roots: [ca.certificate], serverName: "localhost"))
        let failure = try #require(Self.failure(result))
        #expect(failure.kind == .tls)
        #expect(failure.detail == "hostname mismatch: the certificate is for other.test, not localhost")
        let named = try await Self.probe(server, TLSOptions(roots: [ca.certificate], serverName: "other.test"))
        #expect(named.outcome == .reply(.init("TLSv1.3")))
        try await server.stop()
    }

    @Test func probe_whenTheCAIsUnknown_failsAsTLS() async throws {
        let trusted = try TestCertificates.authority()
        let other = try TestCertificates.authority("some other CA")
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: other)
        let server = try await TLSServer(chain: [leaf])
        let failure = try #require(Self.failure(try await Self.probe(server, TLSOptions(roots: [trusted.certificate]))))
        #expect(failure.kind == .tls)
        #expect(failure.detail == "unknown CA: no trusted root for CN=some other CA in the ca_file")
        try await server.stop()
    }

    @Test func probe_whenThePortSpeaksNoTLS_failsWithinTheTimeout() async throws {
        let listener = try HangingListener()
        var target = Target(url: "tls://127.0.0.1:\(listener.port)", timeout: .milliseconds(300))
        target.tls = TLSOptions()
        let result = try await TLSProber(group: MultiThreadedEventLoopGroup.singleton).probe(
            target, settings: Settings())
        #expect(Self.failure(result)?.kind == .timeout)
        #expect(result.latency < .seconds(2))
    }
}
