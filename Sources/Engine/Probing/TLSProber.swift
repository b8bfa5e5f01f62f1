import FoundationEssentials
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// TLSProber polls `tls://host:port`: a TLS handshake on a bare port (SMTPS, LDAPS, a database's TLS port),
/// then the certificate chain the server presented, read and verified with swift-certificates.
///
/// The handshake itself trusts anything (swift-nio-ssl hands the presented chain only to a custom
/// verification callback, which replaces its own checks), so an expired or untrusted certificate still
/// reports its facts in `res.tls`. Then, unless `tls = { verify = false }`: a chain that does not verify is
/// failure kind `tls` with the reason in `detail` (expired, self-signed, unknown CA, hostname mismatch);
/// and with `cert_expiry = N` a chain that expires within N days is degraded. Nothing is ever sent over
/// the connection; it is closed after the handshake.
public struct TLSProber: Prober {
    private let group: any EventLoopGroup
    private let resolver: NameResolver
    private let context: NIOSSLContext

    public init(group: any EventLoopGroup, resolver: NameResolver = .shared) throws {
        self.group = group
        self.resolver = resolver
        var configuration = TLSConfiguration.makeClientConfiguration()
        // TLS 1.2 and 1.3 only, as on https:// (RFC 8996); swift-nio-ssl's default minimum is TLS 1.0.
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .noHostnameVerification
        self.context = try NIOSSLContext(configuration: configuration)
    }

    public func probe(_ target: Target, settings: Settings) async -> ProbeResult {
        let start = ContinuousClock.now
        let timeout = settings.timeout(for: target)
        let options = target.tls ?? TLSOptions()
        let address: ProbeAddress
        switch ProbeAddress.parse(target.url) {
        case .success(let a): address = a
        case .failure(let error): return .failed(.badURL, error.message)
        }
        let serverName = options.serverName ?? address.host
        let loop = self.group.next()
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.seconds * 1e9))
        let socket: SocketAddress
        switch await self.resolver.resolve(address.host, port: address.port, deadline: deadline, on: loop) {
        case .success(let s): socket = s
        case .failure(let failure): return ProbeResult(.failure(failure), latency: ContinuousClock.now - start)
        }
        // The chain is captured, not judged, during the handshake: verified below, so that a chain that does
        // not verify still reports its facts with the negotiated version.
        let presented = PresentedChain(serverName: serverName, roots: options.roots, verifies: false)
        let handshake = loop.makePromise(of: TLSVersion?.self)
        let sslContext = self.context
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(max(1, (deadline - .now()).nanoseconds)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try presented.handler(context: sslContext))
                    try channel.pipeline.syncOperations.addHandler(HandshakeHandler(promise: handshake))
                }
            }
            .connect(to: socket)
        connected.whenFailure { handshake.fail($0) }
        let timer = loop.scheduleTask(deadline: deadline) {
            handshake.fail(
                ProbeFailure(.timeout, detail: "no TLS handshake within \(formatSeconds(timeout.seconds)) s"))
        }
        let version: String
        do {
            version = Self.name(try await handshake.futureResult.get())
            timer.cancel()
            try await connected.get().close(promise: nil)
        } catch {
            timer.cancel()
            connected.whenSuccess { $0.close(promise: nil) }
            let failure = TCPProber.inWords(Self.classify(error, timeout: timeout), "\(address.host):\(address.port)")
            return ProbeResult(.failure(failure), latency: ContinuousClock.now - start)
        }
        let latency = ContinuousClock.now - start
        if let unreadable = presented.unreadable { return ProbeResult(.failure(unreadable), latency: latency) }
        guard let check = presented.check else {
            return .failed(.tls, "the server presented no certificate", latency: latency)
        }
        let facts = check.facts(version: version)
        let now = Date()
        if options.verify, let problem = await check.problem(serverName: serverName, roots: options.roots, now: now) {
            return ProbeResult(.failure(ProbeFailure(.tls, detail: problem)), latency: latency, tls: facts)
        }
        if let days = options.certExpiryDays, let words = CertificateCheck.expiryWarning(facts, days: days, now: now) {
            let reply = ProbeResult.Reply(version, health: .degraded, error: "cert_expiry", detail: words)
            return ProbeResult(.reply(reply), latency: latency, tls: facts)
        }
        return ProbeResult(.reply(.init(version)), latency: latency, tls: facts)
    }

    /// `TLSv1.3` and the like, as OpenSSL and blackbox_exporter's `probe_tls_version_info` name them.
    static func name(_ version: TLSVersion?) -> String {
        switch version {
        case .tlsv1: "TLSv1.0"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        case .none: "TLS"
        }
    }

    /// A failed handshake in words: the TLS alert or error the library gave (``TLSFailureWords``), without
    /// BoringSSL's dump.
    static func classify(_ error: any Error, timeout: Duration) -> ProbeFailure {
        HTTPProber.classify(error, timeout: timeout)
    }
}
