import Foundation

/// ClosingListener is a server that accepts each connection and closes it at once, before reading a byte
/// (as a server of another kind may do with a protocol it does not know); on a thread of its own until
/// deinit.
final class ClosingListener: Sendable {
    let port: Int
    private let fd: Int32

    init() throws {
        (self.fd, self.port) = try bindLoopback(listen: 64)
        let fd = self.fd
        Thread.detachNewThread {
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                close(client)
            }
        }
    }

    deinit {
        shutdown(self.fd, Int32(SHUT_RDWR))
        close(self.fd)
    }
}
