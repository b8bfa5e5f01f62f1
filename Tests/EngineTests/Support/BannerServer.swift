import NIOCore
import NIOPosix

/// BannerServer is a TCP server on a loopback port that greets each connection with `banner` (as SSH, SMTP
/// and FTP servers do) and answers each line `PING` with `+PONG` (as Redis does).
final class BannerServer: Sendable {
    let port: Int
    private let channel: any Channel

    init(banner: String) async throws {
        self.channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Greeter(banner: banner))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.port = self.channel.localAddress!.port!
    }

    func stop() async throws {
        try await self.channel.close()
    }

    private final class Greeter: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let banner: String
        var line: [UInt8] = []

        init(banner: String) {
            self.banner = banner
        }

        func channelActive(context: ChannelHandlerContext) {
            if !self.banner.isEmpty {
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: self.banner)), promise: nil)
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = self.unwrapInboundIn(data)
            while let byte = buffer.readInteger(as: UInt8.self) {
                guard byte == UInt8(ascii: "\n") else {
                    self.line.append(byte)
                    continue
                }
                let text = String(decoding: self.line, as: UTF8.self).trimmingSuffix("\r")
                self.line = []
                let reply = text == "PING" ? "+PONG\r\n" : "-ERR unknown command\r\n"
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: reply)), promise: nil)
            }
        }
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        self.hasSuffix(suffix) ? String(self.dropLast(suffix.count)) : self
    }
}
