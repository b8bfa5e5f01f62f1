import NIOCore
import NIOPosix
import NIOSSL

/// TLSServer is a SwiftNIO + NIOSSL server on a loopback port that presents `chain` (leaf first) and then
/// says nothing: what a TLS port looks like to a handshake-only probe.
final class TLSServer: Sendable {
    let port: Int
    private let channel: any Channel

    init(chain: [TestCertificates.Issued]) async throws {
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try chain.map { .certificate(try TestCertificates.nio($0.certificate)) },
            privateKey: .privateKey(
                try NIOSSLPrivateKey(bytes: Array(chain[0].key.pemRepresentation.utf8), format: .pem)))
        let context = try NIOSSLContext(configuration: configuration)
        self.channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.port = self.channel.localAddress!.port!
    }

    var url: String { "tls://127.0.0.1:\(self.port)" }

    func stop() async throws {
        try await self.channel.close()
    }
}
