import Foundation

/// HangingListener is a server that never answers: it listens on a loopback port but never accepts, so a
/// client connects (the kernel completes the handshake), sends its request, and waits forever.
final class HangingListener: Sendable {
    let port: Int
    private let fd: Int32

    init() throws {
        (self.fd, self.port) = try bindLoopback(listen: 64)
    }

    var url: String { "http://127.0.0.1:\(self.port)" }

    deinit {
        close(self.fd)
    }
}
