import Foundation

/// A datagram socket standing in for systemd's notify socket: bound at a fresh path, it receives what
/// the child sends to `$NOTIFY_SOCKET`.
final class NotifySocket: Sendable {
    let path: String
    private let fd: Int32

    init() throws {
        self.path = "/tmp/urlpoll-notify-\(UUID().uuidString.prefix(8)).sock"
        self.fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(self.path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(self.fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard self.fd >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
    }

    /// The next datagram, or nil when none comes within `limit`. Polls without blocking, so no thread of
    /// the cooperative pool waits on the socket.
    func receive(within limit: Duration = .seconds(30)) async -> String? {
        let deadline = ContinuousClock.now + limit
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            let n = buffer.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { return String(decoding: buffer[..<n], as: UTF8.self) }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    deinit {
        close(self.fd)
        unlink(self.path)
    }
}
