import Foundation
import Synchronization

/// KeepAliveServer is an HTTP/1.1 server on loopback that counts the connections it accepts and the
/// requests it answers. Every answer carries `Content-Length: 5` (`hello` for a GET, nothing for a HEAD).
/// With `dropsIdleConnections`, each connection answers one request, then takes the next and closes without
/// an answer: the race a client meets when a server drops a kept-alive connection as a request arrives.
final class KeepAliveServer: Sendable {
    let port: Int
    private let listener: Int32
    private let counts = Mutex((connections: 0, requests: 0, open: 0))

    init(dropsIdleConnections: Bool = false, bodySize: Int = 5) throws {
        let (fd, port) = try bindLoopback(listen: 64)
        self.listener = fd
        self.port = port
        let thread = Thread { [self] in
            while true {
                let connection = accept(fd, nil, nil)
                if connection < 0 { return }
                self.counts.withLock {
                    $0.connections += 1
                    $0.open += 1
                }
                Thread.detachNewThread {
                    self.serve(connection, once: dropsIdleConnections, bodySize: bodySize)
                }
            }
        }
        thread.start()
    }

    var url: String { "http://127.0.0.1:\(self.port)" }
    var connections: Int { self.counts.withLock { $0.connections } }
    var requests: Int { self.counts.withLock { $0.requests } }
    /// Connections the client has not closed yet.
    var open: Int { self.counts.withLock { $0.open } }

    deinit {
        shutdown(self.listener, Int32(SHUT_RDWR))
        close(self.listener)
    }

    private func serve(_ fd: Int32, once: Bool, bodySize: Int) {
        defer {
            close(fd)
            self.counts.withLock { $0.open -= 1 }
        }
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var served = false
        while true {
            while pending.headerEnd == nil {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { return }
                pending += buffer[0..<n]
            }
            let end = pending.headerEnd!
            let head = String(decoding: pending[..<end], as: UTF8.self)
            pending.removeFirst(end + 4)
            if once, served { return }
            served = true
            self.counts.withLock { $0.requests += 1 }
            let body = head.hasPrefix("HEAD ") ? "" : String(repeating: "hello", count: bodySize / 5)
            let answer = "HTTP/1.1 200 OK\r\nContent-Length: \(bodySize)\r\n\r\n" + body
            guard writeAll(fd, answer) else { return }
        }
    }
}

extension [UInt8] {
    fileprivate var headerEnd: Int? {
        guard self.count >= 4 else { return nil }
        for i in 0...(self.count - 4) where self[i] == 13 && self[i + 1] == 10 && self[i + 2] == 13 && self[i + 3] == 10
        {
            return i
        }
        return nil
    }
}
