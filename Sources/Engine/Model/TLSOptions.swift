import X509

/// TLSOptions is a URL's `tls = { verify, ca_file, server_name, cert_expiry }`: how its certificate is
/// checked after the handshake.
public struct TLSOptions: Sendable, Hashable {
    /// Whether the chain is verified (RFC 5280 path validation, and the name per RFC 6125); `false` polls a
    /// self-signed server and still reports its certificate.
    public var verify = true
    /// The trusted roots read from `ca_file` (PEM), or `nil` for the system's (`/etc/ssl/certs`).
    public var roots: [Certificate]?
    /// The `ca_file` path the roots came from, for messages.
    public var caFile: String?
    /// The name sent as SNI (RFC 6066 §3) and checked against the certificate, or `nil` for the URL's host.
    public var serverName: String?
    /// Degraded when the leaf or any certificate of the chain expires within this many days (`cert_expiry`),
    /// or `nil` to judge the expiry only by verification (down once expired).
    public var certExpiryDays: Double?

    public init(
        verify: Bool = true, roots: [Certificate]? = nil, caFile: String? = nil, serverName: String? = nil,
        certExpiryDays: Double? = nil
    ) {
        self.verify = verify
        self.roots = roots
        self.caFile = caFile
        self.serverName = serverName
        self.certExpiryDays = certExpiryDays
    }
}
