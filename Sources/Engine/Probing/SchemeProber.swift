import NIOCore

/// SchemeProber sends each URL to the prober for its scheme: `http://` and `https://` to the HTTP prober,
/// `tcp://` to ``TCPProber``, `tls://` to ``TLSProber``, `dns://` to ``DNSProber``. The pool sees one
/// ``Prober``; the script's validation has already refused every other scheme.
public struct SchemeProber: Prober {
    private let http: any Prober
    private let tcp: TCPProber
    private let tls: TLSProber
    private let dns: DNSProber
    /// The event loops every probe's I/O runs on.
    public let eventLoops: (any EventLoopGroup)?

    /// - Parameters:
    ///   - http: Polls `http://` and `https://` URLs (``HTTPProber``).
    ///   - group: The event loops the TCP, TLS and DNS probes run on.
    ///   - resolver: Resolves the host names of `tcp://` and `tls://` URLs.
    public init(http: any Prober, group: any EventLoopGroup, resolver: NameResolver = .shared) throws {
        self.http = http
        self.eventLoops = group
        self.tcp = TCPProber(group: group, resolver: resolver)
        self.tls = try TLSProber(group: group, resolver: resolver)
        self.dns = DNSProber(group: group)
    }

    public func probe(_ target: Target, settings: Settings) async -> ProbeResult {
        switch Scheme(target.url) {
        case .tcp: await self.tcp.probe(target, settings: settings)
        case .tls: await self.tls.probe(target, settings: settings)
        case .dns: await self.dns.probe(target, settings: settings)
        case .http: await self.http.probe(target, settings: settings)
        }
    }
}

/// Scheme is the kind of probe a URL asks for, read from its scheme (case-insensitive, RFC 3986 §3.1).
public enum Scheme: Sendable, Hashable {
    /// `http://` and `https://`.
    case http
    /// `tcp://host:port`.
    case tcp
    /// `tls://host:port`.
    case tls
    /// `dns://[server[:port]]/name?type=TYPE`.
    case dns

    /// The kind `url` asks for; anything not tcp, tls or dns goes to the HTTP prober, which reports a bad URL.
    public init(_ url: String) {
        let utf8 = url.utf8
        guard utf8.count > 6 else {
            self = .http
            return
        }
        let prefix = Array(utf8.prefix(6)).map { $0 | 0x20 }
        switch prefix {
        case Array("tcp://".utf8): self = .tcp
        case Array("tls://".utf8): self = .tls
        case Array("dns://".utf8): self = .dns
        default: self = .http
        }
    }
}
