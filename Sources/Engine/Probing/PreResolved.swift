import NIOCore
import NIOPosix

/// PreResolved hands SwiftNIO's Happy Eyeballs connector (RFC 8305) the addresses ``NameResolver`` looked
/// up, so that it races IPv6 and IPv4 as it does with its own lookup, while the lookup itself ran off the
/// event loops and was timed.
struct PreResolved: Resolver, Sendable {
    let addresses: [SocketAddress]
    let loop: any EventLoop

    func initiateAQuery(host: String, port: Int) -> EventLoopFuture<[SocketAddress]> {
        self.loop.makeSucceededFuture(self.addresses.filter { $0.protocol == .inet })
    }

    func initiateAAAAQuery(host: String, port: Int) -> EventLoopFuture<[SocketAddress]> {
        self.loop.makeSucceededFuture(self.addresses.filter { $0.protocol == .inet6 })
    }

    func cancelQueries() {}
}
