import NIOCore
import NIOPosix
import Testing

@testable import Engine

/// Host names of HTTP polls: looked up on ``NameResolver`` (every address, in getaddrinfo's order), then
/// handed to SwiftNIO's Happy Eyeballs connector (``PreResolved``), so a name whose first address refuses
/// still connects by its next one, as it does with SwiftNIO's own lookup.
@Suite(.timeLimit(.minutes(2))) struct NameResolverTests {
    @Test func resolveAll_givesEveryAddress_andAnAddressLiteralWithoutALookup() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let deadline = NIODeadline.now() + .seconds(5)
        let names = try await NameResolver.shared.resolveAll("localhost", port: 80, deadline: deadline, on: loop).get()
        #expect(names.contains { $0.ipAddress == "127.0.0.1" }, "\(names)")
        let literal = try await NameResolver.shared.resolveAll("::1", port: 80, deadline: deadline, on: loop).get()
        #expect(literal.map(\.ipAddress) == ["::1"])
        let none = await NameResolver.shared.resolveAll("no-such-host.invalid", port: 80, deadline: deadline, on: loop)
        guard case .failure(let failure) = none else {
            Issue.record("expected a failure, got \(none)")
            return
        }
        #expect(failure.kind == .dns)
    }

    /// The name's IPv6 address refuses (nothing listens on ::1 there); its IPv4 one answers.
    @Test func preResolved_whenTheFirstAddressRefuses_connectsByTheNext() async throws {
        let server = try RecordingServer { request in [.ok(request)] }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let addresses = [
            try SocketAddress(ipAddress: "::1", port: server.port),
            try SocketAddress(ipAddress: "127.0.0.1", port: server.port),
        ]
        let channel = try await ClientBootstrap(group: loop)
            .connectTimeout(.seconds(5))
            .resolver(PreResolved(addresses: addresses, loop: loop))
            .connect(host: "dual-stack.test", port: server.port).get()
        #expect(channel.remoteAddress?.ipAddress == "127.0.0.1")
        try await channel.close()
    }
}
