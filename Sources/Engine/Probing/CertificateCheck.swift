import FoundationEssentials
import SwiftASN1
import X509

/// CertificateCheck reads and judges the chain a TLS server presented, with swift-certificates: the facts
/// for `res.tls`, the verification (RFC 5280 path validation to a trusted root, then the name per RFC 6125),
/// and how close the chain is to expiry.
struct CertificateCheck: Sendable {
    /// The presented chain, leaf first.
    let chain: [Certificate]

    /// Parses the DER certificates the handshake presented (leaf first), or says which one does not parse.
    init(der: [[UInt8]]) throws(ProbeFailure) {
        var chain: [Certificate] = []
        for (i, bytes) in der.enumerated() {
            do {
                chain.append(try Certificate(derEncoded: bytes))
            } catch {
                throw ProbeFailure(.tls, detail: "certificate \(i + 1) of the chain does not parse as X.509")
            }
        }
        guard !chain.isEmpty else { throw ProbeFailure(.tls, detail: "the server presented no certificate") }
        self.chain = chain
    }

    /// The facts hooks see as `res.tls`.
    func facts(version: String) -> TLSFacts {
        let leaf = self.chain[0]
        var sans: [String] = []
        if let names = try? leaf.extensions.subjectAlternativeNames {
            for name in names {
                switch name {
                case .dnsName(let dns): sans.append(dns)
                case .ipAddress(let octets): sans.append(Self.address(octets.bytes))
                default: continue
                }
            }
        }
        return TLSFacts(
            version: version, subject: leaf.subject.description, issuer: leaf.issuer.description, sans: sans,
            notBefore: leaf.notValidBefore.timeIntervalSince1970, notAfter: leaf.notValidAfter.timeIntervalSince1970,
            chainNotAfter: self.chain.map(\.notValidAfter.timeIntervalSince1970).min() ?? 0)
    }

    /// Why the chain cannot be trusted for `serverName` at `now`, in words, or `nil` when it can: expired
    /// or not yet valid, self-signed, an unknown CA, or a name mismatch, checked in that order (an untrusted
    /// chain whose leaf names another host says both).
    func problem(serverName: String, roots: [Certificate]?, now: Date) async -> String? {
        for certificate in self.chain {
            if certificate.notValidAfter < now {
                return
                    "certificate expired: \(certificate.subject) expired at \(Self.format(certificate.notValidAfter))"
            }
            if certificate.notValidBefore > now {
                return "certificate not yet valid: \(certificate.subject) is valid from "
                    + Self.format(certificate.notValidBefore)
            }
        }
        let leaf = self.chain[0]
        let store = roots.map { CertificateStore($0) } ?? CertificateStore.systemTrustRoots
        var path = Verifier(rootCertificates: store) { RFC5280Policy() }
        let intermediates = CertificateStore(self.chain.dropFirst())
        guard case .validCertificate = await path.validate(leaf: leaf, intermediates: intermediates) else {
            let trust =
                leaf.subject == leaf.issuer
                ? "self-signed certificate: \(leaf.subject) is not a trusted root"
                : "unknown CA: no trusted root for \(leaf.issuer)"
            let mismatch = await self.nameMismatch(serverName: serverName)
            return trust + (roots == nil ? "" : " in the ca_file") + (mismatch.map { "; \($0)" } ?? "")
        }
        return await self.nameMismatch(serverName: serverName)
    }

    /// Whether the leaf names `serverName` (RFC 6125, with swift-certificates' ServerIdentityPolicy), judged
    /// apart from whether the chain is trusted: `hostname mismatch: …` in words, or `nil` when it does.
    func nameMismatch(serverName: String) async -> String? {
        let leaf = self.chain[0]
        let ip = Self.isAddress(serverName) ? serverName : nil
        // The leaf as its own root: the only check that can fail is the name (the leaf's other critical
        // extensions are judged by `problem`, not here).
        var named = Verifier(rootCertificates: CertificateStore([leaf])) {
            ServerIdentityPolicy(serverHostname: ip == nil ? serverName : nil, serverIP: ip)
            CriticalExtensionsAccepted(leaf)
        }
        guard case .validCertificate = await named.validate(leaf: leaf, intermediates: CertificateStore()) else {
            let names = self.facts(version: "").sans
            return "hostname mismatch: the certificate is for "
                + (names.isEmpty ? "\(leaf.subject)" : names.joined(separator: ", ")) + ", not \(serverName)"
        }
        return nil
    }

    /// Why a chain with `facts` is degraded at `now` under `cert_expiry = days`, in words (`the certificate
    /// expires in 2 days, at 2026-12-24T10:00:00Z (cert_expiry = 14 days)`, or `a certificate of the chain
    /// …` when an intermediate expires first), or `nil` when neither the leaf nor any certificate of the
    /// chain expires within `days` days. The same rule and words for `tls://` and `https://` URLs.
    static func expiryWarning(_ facts: TLSFacts, days: Double, now: Date) -> String? {
        let expiry = min(facts.notAfter, facts.chainNotAfter)
        guard expiry - now.timeIntervalSince1970 < days * 86_400 else { return nil }
        let which = facts.chainNotAfter < facts.notAfter ? "a certificate of the chain" : "the certificate"
        let left = facts.daysLeft(at: now.timeIntervalSince1970)
        return "\(which) expires in \(left.counted("day")), at \(Self.format(Date(timeIntervalSince1970: expiry))) "
            + "(cert_expiry = \(formatSeconds(days)) \(days == 1 ? "day" : "days"))"
    }

    /// Whether `name` is an IPv4 or IPv6 literal, matched against the certificate's IP names instead of its
    /// DNS names (RFC 6125 §6.2.1).
    static func isAddress(_ name: String) -> Bool {
        if name.contains(":") { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    /// `2026-12-24T10:00:00Z`.
    static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    /// An IPv4 or IPv6 address in its usual text form.
    static func address(_ bytes: ArraySlice<UInt8>) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex {
            groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
            i += 2
        }
        return groups.joined(separator: ":")
    }
}

/// CriticalExtensionsAccepted lets a name check (``CertificateCheck/nameMismatch(serverName:)``) pass over
/// the leaf's critical extensions (RFC 5280 §4.2), which the Verifier otherwise rejects unless a policy
/// claims them; the full path validation in ``CertificateCheck/problem(serverName:roots:now:)`` judges them.
private struct CriticalExtensionsAccepted: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier]

    init(_ leaf: Certificate) {
        self.verifyingCriticalExtensions = leaf.extensions.filter(\.critical).map(\.oid)
    }

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        .meetsPolicy
    }
}
