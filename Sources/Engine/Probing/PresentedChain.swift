import FoundationEssentials
import NIOCore
import NIOSSL
import Synchronization
import X509

/// PresentedChain is one TLS handshake's hold on the certificate chain the server presented, for the
/// `tls://` probe and for `https://` connections alike.
///
/// swift-nio-ssl hands the presented chain (leaf first) only to a custom verification callback, and that
/// callback replaces BoringSSL's own checks (swift-nio-ssl, SSLCallbacks.swift). The one ``handler(context:)``
/// installs captures the chain as a ``CertificateCheck`` (swift-certificates), so an expired or untrusted
/// certificate still reports its facts. When the handshake is told to verify (an `https://` connection with
/// `tls.verify`), the callback also verifies the chain there, before the handshake may finish (RFC 5280 path
/// validation to the system's roots or the `ca_file`'s, then the name per RFC 6125): a chain that does not
/// verify fails the handshake, so no request, and no credential, is ever sent over it, and ``problem`` says
/// why in words.
final class PresentedChain: Sendable {
    /// The name checked against the certificate (`tls.server_name`, or the URL's host); also sent as SNI
    /// (RFC 6066 §3) unless it is an IP address.
    let serverName: String
    /// The roots of `tls.ca_file`, or `nil` for the system's.
    let roots: [Certificate]?
    /// Whether the chain is verified during the handshake.
    let verifies: Bool
    private let captured = Mutex<(check: CertificateCheck?, problem: String?, unreadable: ProbeFailure?)>(
        (nil, nil, nil))

    init(serverName: String, roots: [Certificate]?, verifies: Bool) {
        self.serverName = serverName
        self.roots = roots
        self.verifies = verifies
    }

    /// The chain as read, or `nil` before the server presented one (or when it did not parse).
    var check: CertificateCheck? { self.captured.withLock { $0.check } }

    /// Why the chain did not verify, in words (``CertificateCheck/problem(serverName:roots:now:)``), or `nil`.
    var problem: String? { self.captured.withLock { $0.problem } }

    /// The chain's certificate that did not parse, in words (a `tls` failure), or `nil`.
    var unreadable: ProbeFailure? { self.captured.withLock { $0.unreadable } }

    /// The facts of the presented chain with the negotiated `version`, or `nil` when there was none.
    func facts(version: String) -> TLSFacts? {
        self.check?.facts(version: version)
    }

    /// A client handler for one connection, with the verification callback that fills this in.
    func handler(context: NIOSSLContext) throws -> NIOSSLClientHandler {
        let sni = CertificateCheck.isAddress(self.serverName) ? nil : self.serverName
        return try NIOSSLClientHandler(
            context: context, serverHostname: sni,
            customVerificationCallback: { [self] certificates, verified in
                self.present(certificates, verified)
            })
    }

    /// The callback: runs on the connection's event loop; verification runs on a task, and completes
    /// `verified` from there.
    private func present(_ certificates: [NIOSSLCertificate], _ verified: EventLoopPromise<NIOSSLVerificationResult>) {
        let check: CertificateCheck
        do {
            check = try CertificateCheck(der: certificates.compactMap { try? $0.toDERBytes() })
        } catch {
            self.captured.withLock { $0.unreadable = error }
            verified.succeed(self.verifies ? .failed : .certificateVerified)
            return
        }
        self.captured.withLock { $0.check = check }
        guard self.verifies else {
            verified.succeed(.certificateVerified)
            return
        }
        let serverName = self.serverName
        let roots = self.roots
        Task {
            let problem = await check.problem(serverName: serverName, roots: roots, now: Date())
            self.captured.withLock { $0.problem = problem }
            verified.succeed(problem == nil ? .certificateVerified : .failed)
        }
    }

    /// A failed handshake as the poll reports it: the chain's problem in words with the certificate's
    /// subject (`unknown CA: no trusted root for CN=Corp CA (certificate CN=api.corp)`), or else what the
    /// handshake lacked (``TLSFailureWords``), never BoringSSL's dump.
    func failure(_ error: any Error, timeout: Duration) -> ProbeFailure {
        if let unreadable = self.unreadable { return unreadable }
        guard let problem = self.problem else { return HTTPProber.classify(error, timeout: timeout) }
        guard let subject = self.check?.chain.first?.subject.description, !problem.contains(subject) else {
            return ProbeFailure(.tls, detail: problem)
        }
        return ProbeFailure(.tls, detail: "\(problem) (certificate \(subject))")
    }
}
