import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// TestCertificates issues the certificates the TLS tests serve: a CA, and leaves and intermediates with
/// chosen names and validity, signed with P-256 keys made for the test (swift-certificates and swift-crypto).
struct TestCertificates {
    /// A certificate and the key it certifies.
    struct Issued {
        let certificate: Certificate
        let key: P256.Signing.PrivateKey

        var pem: String {
            get throws { try self.certificate.serializeAsPEM().pemString }
        }
    }

    /// A certificate authority valid for a year.
    static func authority(_ name: String = "urlpoll test CA", notAfter: TimeInterval = 365 * 86_400) throws -> Issued {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(name) }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date() - 3600, notValidAfter: Date() + notAfter, issuer: subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                KeyUsage(keyCertSign: true)
            },
            issuerPrivateKey: .init(key))
        return Issued(certificate: certificate, key: key)
    }

    /// A certificate for `names` (DNS names, or IPv4 literals as IP names), valid from an hour ago until
    /// `notAfter` seconds from now (negative: already expired), issued by `issuer` (or by itself).
    static func leaf(
        _ names: [String], notAfter: TimeInterval, issuer: Issued?, authority: Bool = false
    ) throws -> Issued {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(names[0]) }
        let sans = names.map { name -> GeneralName in
            let parts = name.split(separator: ".").compactMap { UInt8($0) }
            return parts.count == 4 ? .ipAddress(ASN1OctetString(contentBytes: ArraySlice(parts))) : .dnsName(name)
        }
        let extensions: Certificate.Extensions
        if authority {
            extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                KeyUsage(keyCertSign: true)
            }
        } else {
            extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                SubjectAlternativeNames(sans)
            }
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: Date() - 7200, notValidAfter: Date() + notAfter,
            issuer: issuer?.certificate.subject ?? subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions, issuerPrivateKey: .init(issuer?.key ?? key))
        return Issued(certificate: certificate, key: key)
    }

    /// `certificate` for swift-nio-ssl.
    static func nio(_ certificate: Certificate) throws -> NIOSSLCertificate {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
    }
}
