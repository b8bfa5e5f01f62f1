import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// TLSServer is a SwiftNIO + NIOSSL server on a loopback port that presents `chain` (leaf first). Alone it
/// then says nothing: what a TLS port looks like to a handshake-only probe. In front of a plain server
/// (`forwardingTo`, such as a ``RecordingServer``'s port) it terminates TLS and relays the bytes both ways,
/// so every odd server the plain tests play is also an `https://` one. `maximumVersion` caps the TLS
/// versions it speaks (a TLS 1.1-only server, as old appliances are).
final class TLSServer: Sendable {
    let port: Int
    private let channel: any Channel

    init(
        chain: [TestCertificates.Issued], forwardingTo backend: Int? = nil, maximumVersion: TLSVersion? = nil
    ) async throws {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try chain.map { .certificate(try TestCertificates.nio($0.certificate)) },
            privateKey: .privateKey(
                try NIOSSLPrivateKey(bytes: Array(chain[0].key.pemRepresentation.utf8), format: .pem)))
        if let maximumVersion {
            configuration.minimumTLSVersion = .tlsv1
            configuration.maximumTLSVersion = maximumVersion
        }
        let context = try NIOSSLContext(configuration: configuration)
        self.channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    guard let backend else { return }
                    try channel.pipeline.syncOperations.addHandler(Relay(backend: backend))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.port = self.channel.localAddress!.port!
    }

    var url: String { "tls://127.0.0.1:\(self.port)" }
    /// The `https://` origin, for a server that forwards.
    var https: String { "https://127.0.0.1:\(self.port)" }

    func stop() async throws {
        try await self.channel.close()
    }
}

/// Relay passes what its channel reads to `peer` (both on one event loop), holding it until the peer is
/// connected, and closes the peer when its own channel closes. The TLS side's relay connects to the
/// backend only once the handshake is done, so the backend sees no connection for a failed handshake.
private final class Relay: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let backend: Int?
    private var peer: (any Channel)?
    private var held: [ByteBuffer] = []
    private var closed = false

    /// The TLS side, connecting to `backend` after the handshake.
    init(backend: Int) {
        self.backend = backend
    }

    /// The backend side, relaying to `peer`.
    init(peer: any Channel) {
        self.backend = nil
        self.peer = peer
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let backend = self.backend, let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            let channel = context.channel
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            ClientBootstrap(group: context.eventLoop)
                .channelInitializer { back in
                    back.eventLoop.makeCompletedFuture {
                        try back.pipeline.syncOperations.addHandler(Relay(peer: channel))
                    }
                }
                .connect(host: "127.0.0.1", port: backend)
                .whenComplete { result in
                    switch result {
                    case .success(let back): bound.value.connect(back)
                    case .failure: channel.close(promise: nil)
                    }
                }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func connect(_ peer: any Channel) {
        guard !self.closed else {
            peer.close(promise: nil)
            return
        }
        self.peer = peer
        for buffer in self.held { peer.write(buffer, promise: nil) }
        self.held = []
        peer.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        if let peer = self.peer { peer.writeAndFlush(buffer, promise: nil) } else { self.held.append(buffer) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closed = true
        self.peer?.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
