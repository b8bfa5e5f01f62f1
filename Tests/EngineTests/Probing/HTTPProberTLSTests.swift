import Foundation
import NIOPosix
import NIOSSL
import Testing

@testable import Engine

/// https:// polls on urlpoll's own client, against an in-process NIOSSL server presenting certificates the
/// test issues (none trusted by the system), alone or in front of a ``RecordingServer``: a handshake that
/// fails is kind `tls`, its detail naming the reason and the certificate's subject in words, never
/// BoringSSL's dump or a file path, and no request goes over it; the URL's `tls` options are honoured; the
/// chain's facts fill `res.tls`, and `cert_expiry` makes the URL degraded.
@Suite(.timeLimit(.minutes(2))) struct HTTPProberTLSTests {
    static func poll(_ server: TLSServer, host: String = "127.0.0.1") async throws -> ProbeFailure {
        let client = HTTPProber.makeClient(pollers: 1)
        let sut = HTTPProber(client: client)
        let result = await sut.probe(
            Target(url: "https://\(host):\(server.port)/health", timeout: .seconds(5)), settings: Settings())
        sut.shutdown()
        try await client.shutdown()
        try await server.stop()
        guard case .failure(let failure) = result.outcome else {
            Issue.record("expected a failure, got \(result.outcome)")
            return ProbeFailure(.error, detail: "")
        }
        return failure
    }

    /// No path, no BoringSSL error code or library dump.
    static func expectInWords(_ failure: ProbeFailure) {
        #expect(failure.kind == .tls)
        #expect(!failure.detail.contains("/"), "\(failure.detail)")
        #expect(!failure.detail.contains("error:"), "\(failure.detail)")
        #expect(!failure.detail.contains("BoringSSL"), "\(failure.detail)")
        #expect(!failure.detail.contains("handshakeFailed"), "\(failure.detail)")
    }

    @Test func probe_whenTheCertificateExpired_saysExpiredAndTheSubject() async throws {
        let ca = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: -86_400, issuer: ca)
        let failure = try await Self.poll(try await TLSServer(chain: [leaf]))
        Self.expectInWords(failure)
        #expect(failure.detail.hasPrefix("certificate expired: CN=127.0.0.1 expired at "), "\(failure.detail)")
    }

    @Test func probe_whenSelfSigned_saysSelfSignedAndTheSubject() async throws {
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: nil)
        let failure = try await Self.poll(try await TLSServer(chain: [leaf]))
        Self.expectInWords(failure)
        #expect(failure.detail == "self-signed certificate: CN=127.0.0.1 is not a trusted root")
    }

    @Test func probe_whenTheCAIsUnknown_saysUnknownCAAndTheSubject() async throws {
        let ca = try TestCertificates.authority("some private CA")
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: ca)
        let failure = try await Self.poll(try await TLSServer(chain: [leaf]))
        Self.expectInWords(failure)
        #expect(
            failure.detail == "unknown CA: no trusted root for CN=some private CA (certificate CN=127.0.0.1)")
    }

    @Test func probe_whenTheNameDiffers_saysHostnameMismatch() async throws {
        let ca = try TestCertificates.authority("some private CA")
        let leaf = try TestCertificates.leaf(["other.test"], notAfter: 30 * 86_400, issuer: ca)
        let failure = try await Self.poll(try await TLSServer(chain: [leaf]))
        Self.expectInWords(failure)
        #expect(
            failure.detail
                == "unknown CA: no trusted root for CN=some private CA; hostname mismatch: the certificate is for "
                + "other.test, not 127.0.0.1 (certificate CN=other.test)")
    }

    /// TLS 1.0 and 1.1 are refused (RFC 8996), as Go's net/http and curl refuse them, even with
    /// `verify = false`; the request is never sent.
    @Test func probe_whenTheServerSpeaksOnlyTLS11_saysProtocolVersion_andSendsNothing() async throws {
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: nil)
        let backend = try RecordingServer { request in [.ok(request)] }
        let server = try await TLSServer(chain: [leaf], forwardingTo: backend.port, maximumVersion: .tlsv11)
        let result = try await Self.probe([Self.target(server.https + "/health", TLSOptions(verify: false))])[0]
        try await server.stop()
        guard case .failure(let failure) = result.outcome else {
            Issue.record("expected a failure, got \(result.outcome)")
            return
        }
        Self.expectInWords(failure)
        #expect(failure.detail.hasPrefix("protocol version: "), "\(failure.detail)")
        #expect(backend.requests.isEmpty)
    }

    @Test func words_nameBoringSSLsReason_withoutItsPath() {
        let text =
            "Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at "
            + "/build/checkouts/swift-nio-ssl/Sources/CNIOBoringSSL/ssl/handshake.cc:393"
        #expect(TLSFailureWords.reason(in: text) == "CERTIFICATE_VERIFY_FAILED")
        #expect(TLSFailureWords.reason(in: "EOF during handshake") == nil)
        #expect(
            TLSFailureWords.words(reason: "TLSV1_ALERT_PROTOCOL_VERSION")
                == "protocol version: the server and urlpoll have no TLS version in common")
        #expect(
            TLSFailureWords.words(reason: "SSLV3_ALERT_HANDSHAKE_FAILURE")
                == "handshake failure: the server and urlpoll have no cipher suite or parameters in common")
        #expect(
            TLSFailureWords.words(reason: "TLSV1_ALERT_DECODE_ERROR")
                == "the server sent the TLS alert \"decode error\"")
        #expect(TLSFailureWords.words(reason: "BAD_ECC_CERT") == "TLS handshake failed: bad ecc cert")
    }

    // MARK: The URL's tls options, res.tls, cert_expiry

    /// A RecordingServer answering 200 `hello`, behind TLS presenting `chain`.
    static func site(_ chain: [TestCertificates.Issued]) async throws -> (TLSServer, RecordingServer) {
        let backend = try RecordingServer { request in [.ok(request)] }
        return (try await TLSServer(chain: chain, forwardingTo: backend.port), backend)
    }

    static func probe(_ targets: [Target]) async throws -> [ProbeResult] {
        let client = HTTPProber.makeClient(pollers: 1)
        let sut = HTTPProber(client: client)
        var results: [ProbeResult] = []
        for target in targets { results.append(await sut.probe(target, settings: Settings())) }
        sut.shutdown()
        try await client.shutdown()
        return results
    }

    static func target(_ url: String, _ tls: TLSOptions?) -> Target {
        var target = Target(url: url, timeout: .seconds(5))
        target.tls = tls
        return target
    }

    @Test func probe_whenVerifyIsOff_pollsASelfSignedServer_andReportsItsCertificate() async throws {
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: nil)
        let (server, backend) = try await Self.site([leaf])
        let result = try await Self.probe([Self.target(server.https + "/health", TLSOptions(verify: false))])[0]
        #expect(result.outcome == .response(code: 200, reason: "OK"))
        let tls = try #require(result.tls)
        #expect(tls.version == "TLSv1.3")
        #expect(tls.subject == "CN=127.0.0.1")
        #expect(tls.notAfter == leaf.certificate.notValidAfter.timeIntervalSince1970)
        #expect(result.http?.ssl == true)
        #expect(backend.requests.map(\.lines[0]) == ["HEAD /health HTTP/1.1"])
        try await server.stop()
    }

    /// The request, and the credentials in it, never go over a chain that did not verify; the chain's facts
    /// are still reported.
    @Test func probe_whenTheChainDoesNotVerify_neverSendsTheRequest() async throws {
        let ca = try TestCertificates.authority("some private CA")
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: ca)
        let (server, backend) = try await Self.site([leaf])
        let url = "https://probe:secret@127.0.0.1:\(server.port)/status"
        let result = try await Self.probe([Self.target(url, nil)])[0]
        #expect(
            result.outcome
                == .failure(
                    ProbeFailure(
                        .tls, detail: "unknown CA: no trusted root for CN=some private CA (certificate CN=127.0.0.1)")))
        #expect(result.tls?.subject == "CN=127.0.0.1")
        #expect(backend.requests.isEmpty)
        #expect(backend.connections == 0)
        try await server.stop()
    }

    /// A connection made with `verify = false` is never reused by a poll that verifies (nor the other way
    /// round): the pool's key holds the scheme and the TLS options.
    @Test func probe_neverReusesAConnectionMadeWithOtherTLSOptions() async throws {
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 30 * 86_400, issuer: nil)
        let (server, backend) = try await Self.site([leaf])
        let url = server.https + "/"
        let results = try await Self.probe([
            Self.target(url, TLSOptions(verify: false)), Self.target(url, nil),
            Self.target(url, TLSOptions(verify: false)),
        ])
        #expect(results[0].outcome == .response(code: 200, reason: "OK"))
        #expect(
            results[1].outcome
                == .failure(ProbeFailure(.tls, detail: "self-signed certificate: CN=127.0.0.1 is not a trusted root")))
        #expect(results[2].outcome == .response(code: 200, reason: "OK"))
        #expect(backend.requests.count == 2)
        // The third poll reused the first's connection.
        #expect(backend.connections == 1)
        try await server.stop()
    }

    /// `ca_file`'s roots are trusted instead of the system's, and `server_name` is the name checked (and sent
    /// as SNI) instead of the URL's host.
    @Test func probe_withCAFileAndServerName_verifiesAgainstThem() async throws {
        let ca = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(["api.internal"], notAfter: 30 * 86_400, issuer: ca)
        let (server, _) = try await Self.site([leaf])
        let url = server.https + "/"
        let results = try await Self.probe([
            Self.target(url, TLSOptions(roots: [ca.certificate], serverName: "api.internal")),
            Self.target(url, TLSOptions(roots: [ca.certificate])),
        ])
        #expect(results[0].outcome == .response(code: 200, reason: "OK"))
        #expect(results[0].tls?.sans == ["api.internal"])
        #expect(
            results[1].outcome
                == .failure(
                    ProbeFailure(
                        .tls,
                        detail:
                            "hostname mismatch: the certificate is for api.internal, not 127.0.0.1 (certificate CN=api.internal)"
                    )))
        try await server.stop()
    }

    /// `cert_expiry = N` makes an https URL degraded within N days, with the words a tls:// URL gets; without
    /// it the same certificate is simply up.
    @Test func probe_whenTheCertificateExpiresWithinCertExpiry_isDegraded() async throws {
        let ca = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(["127.0.0.1"], notAfter: 3 * 86_400 - 60, issuer: ca)
        let (server, _) = try await Self.site([leaf])
        let url = server.https + "/"
        let results = try await Self.probe([
            Self.target(url, TLSOptions(roots: [ca.certificate], certExpiryDays: 14)),
            Self.target(url, TLSOptions(roots: [ca.certificate])),
        ])
        #expect(results[0].outcome == .response(code: 200, reason: "OK"))
        let warning = try #require(results[0].warning)
        #expect(warning.error == "cert_expiry")
        #expect(warning.detail.hasPrefix("the certificate expires in 2 days, at "), "\(warning.detail)")
        #expect(warning.detail.hasSuffix("(cert_expiry = 14 days)"), "\(warning.detail)")
        var resource = Resource(Self.target(url, TLSOptions(roots: [ca.certificate], certExpiryDays: 14)))
        let state = resource.record(results[0], at: 0)
        #expect(state.health == .degraded)
        #expect(state.error == "cert_expiry")
        #expect(state.detail == warning.detail)
        #expect(state.tls?.subject == "CN=127.0.0.1")
        #expect(results[1].warning == nil)
        #expect(Resource(Self.target(url, nil)).recording(results[1]).health == .up)
        try await server.stop()
    }
}

extension Resource {
    /// The state `result` gives this Resource.
    fileprivate func recording(_ result: ProbeResult) -> State {
        var copy = self
        return copy.record(result, at: 0)
    }
}
