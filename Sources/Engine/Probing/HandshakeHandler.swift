import NIOCore
import NIOSSL
import NIOTLS

/// HandshakeHandler completes `promise` with the negotiated TLS version when the TLS handshake ends, or
/// fails it with the first error or a close before then; it runs on its channel's event loop, behind the
/// `NIOSSLClientHandler`. Once the handshake is done it leaves the pipeline when `leavesAfterHandshake`
/// (an `https://` connection, whose later errors are the exchange's), or stays (the `tls://` probe, which
/// closes the connection at once).
final class HandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<TLSVersion?>
    private let leavesAfterHandshake: Bool

    init(promise: EventLoopPromise<TLSVersion?>, leavesAfterHandshake: Bool = false) {
        self.promise = promise
        self.leavesAfterHandshake = leavesAfterHandshake
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            self.promise.succeed(try? context.pipeline.syncOperations.nioSSL_tlsVersion())
            context.fireUserInboundEventTriggered(event)
            if self.leavesAfterHandshake {
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(ProbeFailure(.reset, detail: "the server closed the connection during the TLS handshake"))
        context.fireChannelInactive()
    }
}
