import Foundation
import NIOPosix
import Testing

@testable import Engine

/// https:// polls whose TLS handshake fails, against an in-process NIOSSL server presenting certificates the
/// test issues (none trusted by the system): the failure is kind `tls`, its detail names the reason and the
/// certificate's subject in words, never BoringSSL's dump or a file path.
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
}
