import Foundation

/// MisbehavingServer is a TCP server on loopback that answers HTTP requests badly, by path:
/// `/reset` resets the connection, `/garbage` answers something that is not HTTP, `/huge-headers` sends a
/// megabyte of headers, `/trickle` sends its headers one byte every 100 ms, and `/short` promises 100 bytes
/// of body and closes after 5.
final class MisbehavingServer: @unchecked Sendable {
    // @unchecked: `listener` is written once in init; the threads only read it.
    let port: Int
    private let listener: Int32

    init() throws {
        let (fd, port) = try bindLoopback(listen: 64)
        self.listener = fd
        self.port = port
        let thread = Thread { [listener = fd] in
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 { return }
                Thread.detachNewThread { Self.serve(connection) }
            }
        }
        thread.start()
    }

    var url: String { "http://127.0.0.1:\(self.port)" }

    deinit {
        shutdown(self.listener, Int32(SHUT_RDWR))
        close(self.listener)
    }

    private static func serve(_ fd: Int32) {
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.containsHeaderEnd {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 {
                close(fd)
                return
            }
            request += buffer[0..<n]
        }
        let line = String(decoding: request.prefix { $0 != 13 }, as: UTF8.self)
        let path = line.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
        switch path {
        case "/reset":
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        case "/garbage":
            Self.send(fd, "SSH-2.0-OpenSSH_9.2\r\nthis is not http\r\n\r\n")
        case "/huge-headers":
            var text = "HTTP/1.1 200 OK\r\n"
            for i in 0..<1000 { text += "X-Filler-\(i): " + String(repeating: "x", count: 1000) + "\r\n" }
            Self.send(fd, text + "Content-Length: 0\r\n\r\n")
        case "/trickle":
            for byte in "HTTP/1.1 200 OK\r\nX-Slow: " + String(repeating: "z", count: 600) + "\r\n\r\n" {
                Self.send(fd, String(byte))
                usleep(100_000)
                if fcntl(fd, F_GETFD) < 0 { break }
            }
        case "/short":
            Self.send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        default:
            Self.send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        }
        close(fd)
    }

    private static func send(_ fd: Int32, _ text: String) {
        _ = writeAll(fd, text)
    }
}

extension [UInt8] {
    fileprivate var containsHeaderEnd: Bool {
        guard self.count >= 4 else { return false }
        for i in 0...(self.count - 4) where self[i] == 13 && self[i + 1] == 10 && self[i + 2] == 13 && self[i + 3] == 10
        {
            return true
        }
        return false
    }
}
