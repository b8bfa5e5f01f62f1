import NIOSSL

/// TLS failures in words, for a `tls` failure's detail: the reason BoringSSL names (its upper-case reason
/// code, such as `CERTIFICATE_VERIFY_FAILED`) said plainly, never its error dump, which carries a source
/// file path of the machine the library was built on.
enum TLSFailureWords {
    /// A handshake failure from swift-nio-ssl (``NIOSSLError`` or ``NIOSSLExtraError``) as a
    /// ``ProbeFailure`` of kind `tls` (`reset` when the server closed the connection mid-handshake), or
    /// `nil` when `error` is not one of theirs.
    static func failure(_ error: any Error) -> ProbeFailure? {
        if let error = error as? NIOSSLExtraError {
            if error == .failedToValidateHostname || error == .serverHostnameImpossibleToMatch {
                return ProbeFailure(.tls, detail: "hostname mismatch: the certificate is not for the URL's host")
            }
            return ProbeFailure(.tls, detail: "TLS handshake failed")
        }
        guard let error = error as? NIOSSLError else { return nil }
        switch error {
        case .handshakeFailed(let inner):
            return ProbeFailure(.tls, detail: Self.words(inner))
        case .uncleanShutdown:
            return ProbeFailure(.reset, detail: "the server closed the connection during the TLS handshake")
        case .noCertificateToValidate:
            return ProbeFailure(.tls, detail: "the server presented no certificate")
        case .unableToValidateCertificate:
            return ProbeFailure(.tls, detail: "the certificate could not be validated")
        default:
            return ProbeFailure(.tls, detail: "TLS handshake failed")
        }
    }

    /// BoringSSL's error in words: its first reason code, said plainly.
    static func words(_ error: BoringSSLError) -> String {
        switch error {
        case .sslError(let stack), .unknownError(let stack):
            guard let reason = stack.lazy.compactMap({ Self.reason(in: $0.description) }).first else {
                return "TLS handshake failed"
            }
            return Self.words(reason: reason)
        case .syscallError:
            return "the connection failed during the TLS handshake"
        case .zeroReturn:
            return "the server closed the TLS session during the handshake"
        default:
            return "TLS handshake failed"
        }
    }

    /// `CERTIFICATE_VERIFY_FAILED` and the like in words (reason codes from BoringSSL's `ssl.h`; alert
    /// names from RFC 8446 §6).
    static func words(reason: String) -> String {
        switch reason {
        case "CERTIFICATE_VERIFY_FAILED":
            return "the certificate did not verify"
        case "WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST":
            return "the server does not speak TLS on this port"
        case "UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_SUPPORTED_VERSIONS_ENABLED",
            "UNKNOWN_PROTOCOL":
            return "protocol version: the server and urlpoll have no TLS version in common"
        case "SSLV3_ALERT_HANDSHAKE_FAILURE", "HANDSHAKE_FAILURE_ON_CLIENT_HELLO", "NO_SHARED_CIPHER",
            "NO_CIPHERS_AVAILABLE", "NO_SHARED_GROUP", "TLSV1_ALERT_INSUFFICIENT_SECURITY":
            return "handshake failure: the server and urlpoll have no cipher suite or parameters in common"
        case "TLSV1_ALERT_UNRECOGNIZED_NAME":
            return "the server does not know the name sent as SNI"
        case "SSLV3_ALERT_CERTIFICATE_EXPIRED":
            return "certificate expired (the server's alert)"
        case "TLSV1_ALERT_UNKNOWN_CA":
            return "unknown CA (the server's alert)"
        default:
            let plain = reason.lowercased().split(separator: "_").joined(separator: " ")
            if reason.hasPrefix("SSLV3_ALERT_") || reason.hasPrefix("TLSV1_ALERT_") {
                let alert = plain.split(separator: " ").dropFirst(2).joined(separator: " ")
                return "the server sent the TLS alert \"\(alert)\""
            }
            return "TLS handshake failed: \(plain)"
        }
    }

    /// The reason code in one BoringSSL error's text (`… error:1000007d:SSL routines:OPENSSL_internal:`
    /// `CERTIFICATE_VERIFY_FAILED at /path:line`), or `nil`: only upper-case letters, digits and `_`.
    static func reason(in text: String) -> String? {
        guard let start = text.range(of: "error:") else { return nil }
        // error:CODE:LIBRARY:FUNCTION:REASON
        let fields = text[start.upperBound...].split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
        guard fields.count == 4 else { return nil }
        let reason = fields[3].prefix { $0.isUppercase || $0.isNumber || $0 == "_" }
        return reason.isEmpty ? nil : String(reason)
    }
}
