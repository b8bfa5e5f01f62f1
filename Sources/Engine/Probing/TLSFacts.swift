/// TLSFacts is what a TLS handshake showed of the server: the protocol version and the certificate chain it
/// presented, read with swift-nio-ssl and swift-certificates. Hook tables show it as `res.tls` / `s.tls`.
public struct TLSFacts: Sendable, Hashable {
    /// The negotiated protocol: `"TLSv1.2"` or `"TLSv1.3"` (RFC 5246, RFC 8446); `"TLS"` when an `https://`
    /// handshake failed (a chain that did not verify) before reporting one.
    public var version: String
    /// The negotiated cipher suite, or `nil`: swift-nio-ssl 2.37 does not expose it.
    public var cipher: String?
    /// The leaf's subject, as an RFC 4514 string (`CN=example.com,O=Example`).
    public var subject: String
    /// The leaf's issuer, as an RFC 4514 string.
    public var issuer: String
    /// The leaf's subject alternative names (RFC 5280 §4.2.1.6): DNS names and IP addresses.
    public var sans: [String]
    /// The leaf's notBefore, in seconds since the epoch.
    public var notBefore: Double
    /// The leaf's notAfter, in seconds since the epoch.
    public var notAfter: Double
    /// The earliest notAfter of every certificate the server presented, leaf included, in seconds since the
    /// epoch (blackbox_exporter's `probe_ssl_earliest_cert_expiry`).
    public var chainNotAfter: Double

    public init(
        version: String, cipher: String? = nil, subject: String, issuer: String, sans: [String], notBefore: Double,
        notAfter: Double, chainNotAfter: Double
    ) {
        self.version = version
        self.cipher = cipher
        self.subject = subject
        self.issuer = issuer
        self.sans = sans
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.chainNotAfter = chainNotAfter
    }

    /// Whole days from `now` (seconds since the epoch) until the earlier of the leaf's and the chain's
    /// expiry; negative once expired.
    public func daysLeft(at now: Double) -> Int {
        Int(((min(self.notAfter, self.chainNotAfter) - now) / 86_400).rounded(.down))
    }
}
