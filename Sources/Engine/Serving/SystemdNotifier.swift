#if canImport(Glibc)
    import Glibc
#endif

/// SystemdNotifier tells the service manager about the process's state, as sd_notify(3) does: one
/// datagram per message to the AF_UNIX socket `$NOTIFY_SOCKET` names (a leading `@` meaning the abstract
/// namespace). Without `$NOTIFY_SOCKET` (not run by systemd with `Type=notify`) it does nothing.
///
/// urlpoll sends `READY=1` once the script is loaded and the listener bound, `RELOADING=1` with
/// `MONOTONIC_USEC=` before a reload and `READY=1` after it, and `STOPPING=1` on graceful shutdown.
///
/// Source: sd_notify(3), "Standalone Implementations", and systemd.service(5) `Type=notify`.
public struct SystemdNotifier: Sendable {
    /// The socket path as `$NOTIFY_SOCKET` gives it, or nil.
    public let socketPath: String?

    public init(environment: [String: String]) {
        let path = environment["NOTIFY_SOCKET"]
        self.socketPath = (path?.isEmpty ?? true) ? nil : path
    }

    /// `READY=1`: the service is up.
    public func ready() { self.send("READY=1") }

    /// `STOPPING=1`: the service is shutting down.
    public func stopping() { self.send("STOPPING=1") }

    /// `RELOADING=1` and the monotonic clock in microseconds, as `Type=notify-reload` wants.
    public func reloading() {
        #if canImport(Glibc)
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let microseconds = Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
            self.send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
        #endif
    }

    /// Sends `message` as one datagram; a failure is ignored, as sd_notify's callers do.
    /// - Returns: Whether the datagram was sent.
    @discardableResult
    public func send(_ message: String) -> Bool {
        #if canImport(Glibc)
            guard let path = self.socketPath else { return false }
            var bytes = Array(path.utf8)
            guard bytes.first == UInt8(ascii: "/") || bytes.first == UInt8(ascii: "@") else { return false }
            if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard bytes.count < capacity else { return false }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            // The exact length: an abstract name is not NUL-terminated.
            let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count)
            let sent = message.utf8CString.withUnsafeBufferPointer { text in
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, text.baseAddress, text.count - 1, Int32(MSG_NOSIGNAL), $0, length)
                    }
                }
            }
            return sent == message.utf8.count
        #else
            return false
        #endif
    }
}
