import Foundation

/// A socket (TCP unless `type` says UDP) bound to a free port of `host` (a loopback address, 127.0.0.0/8),
/// listening when `backlog` is given; returns it and the port.
func bindLoopback(
    listen backlog: Int32? = nil, host: String = "127.0.0.1", type: Int32 = Int32(SOCK_STREAM.rawValue)
) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, type, 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr(host)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && (backlog.map { listen(fd, $0) == 0 } ?? true)
                && getsockname(fd, pointer, &length) == 0
        }
    }
    guard ok else {
        close(fd)
        throw POSIXError(.EADDRINUSE)
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// Writes all of `text` to `fd`; false when the peer has gone.
func writeAll(_ fd: Int32, _ text: String) -> Bool {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 { return false }
        offset += n
    }
    return true
}

/// A loopback port with nothing listening: bound, then closed.
func closedPort() throws -> Int {
    let (fd, port) = try bindLoopback()
    close(fd)
    return port
}
