import Foundation
import Synchronization

/// RecordingServer is the tests' one raw-socket HTTP/1.1 server on loopback: it records every request it
/// reads (its head's lines, exactly as sent, and its body), counts connections, and answers each request
/// with the steps `respond` gives for it (bytes to send, pauses, a close or a reset), so one server plays
/// every odd real server the tests need: a keep-alive server, one that drops idle connections, one that
/// sends a body after a HEAD response, bare-LF responses, redirects, garbage.
final class RecordingServer: Sendable {
    /// One request as read off the socket.
    struct Request: Sendable {
        /// The head's lines without their CRLF: the request line, then each header field line.
        var lines: [String]
        var body: [UInt8]
        /// Which request this is on its connection, from 0.
        var indexOnConnection: Int

        var method: String { self.lines.first?.split(separator: " ").first.map(String.init) ?? "" }
        var path: String { self.lines.first?.split(separator: " ").dropFirst().first.map(String.init) ?? "" }

        /// The values of every field named `name` (any case).
        func header(_ name: String) -> [String] {
            self.lines.dropFirst().compactMap { line in
                guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name.lowercased() else {
                    return nil
                }
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
    }

    /// What the server does next on the connection.
    enum Step: Sendable {
        /// Writes these bytes.
        case send(String)
        /// Waits this long (a real pause on the server's own thread; the client's time limits are real too).
        case pause(Duration)
        /// Closes the connection.
        case close
        /// Resets the connection (RST).
        case reset
        /// Waits until the test gives the cue (at most 10 s, then goes on), so a test decides the moment.
        case wait(Cue)
    }

    /// A moment the test chooses: a step ``Step/wait(_:)`` blocks its connection's thread until ``give()``.
    final class Cue: Sendable {
        private let semaphore = DispatchSemaphore(value: 0)

        init() {}

        /// Lets one waiting step (or the next one to wait) go on.
        func give() { self.semaphore.signal() }

        fileprivate func wait() { _ = self.semaphore.wait(timeout: .now() + .seconds(10)) }
    }

    let port: Int
    let host: String
    private let listener: Int32
    private let state = Mutex((connections: 0, open: 0, requests: [Request]()))

    /// - Parameters:
    ///   - host: The loopback address to listen on (127.0.0.0/8: 127.0.0.2 is another "host" here).
    ///   - respond: The steps answering a request; the connection then reads the next request, unless a step
    ///     closed it.
    init(host: String = "127.0.0.1", _ respond: @escaping @Sendable (Request) -> [Step]) throws {
        let (fd, port) = try bindLoopback(listen: 128, host: host)
        self.listener = fd
        self.port = port
        self.host = host
        let thread = Thread { [self] in
            while true {
                let connection = accept(fd, nil, nil)
                if connection < 0 { return }
                self.state.withLock {
                    $0.connections += 1
                    $0.open += 1
                }
                Thread.detachNewThread { self.serve(connection, respond) }
            }
        }
        thread.start()
    }

    var url: String { "http://\(self.host):\(self.port)" }
    var connections: Int { self.state.withLock { $0.connections } }
    /// Connections the client has not closed yet.
    var open: Int { self.state.withLock { $0.open } }
    /// Every request read, in order.
    var requests: [Request] { self.state.withLock { $0.requests } }

    deinit {
        shutdown(self.listener, Int32(SHUT_RDWR))
        close(self.listener)
    }

    private func serve(_ fd: Int32, _ respond: @Sendable (Request) -> [Step]) {
        var closed = false
        defer {
            if !closed { close(fd) }
            self.state.withLock { $0.open -= 1 }
        }
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var index = 0
        while true {
            while pending.firstRange(of: [13, 10, 13, 10]) == nil {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { return }
                pending += buffer[0..<n]
            }
            let end = pending.firstRange(of: [13, 10, 13, 10])!
            let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self)
            pending.removeFirst(end.upperBound)
            var request = Request(
                lines: head.components(separatedBy: "\r\n"), body: [], indexOnConnection: index)
            let length = request.header("Content-Length").first.flatMap { Int($0) } ?? 0
            while pending.count < length {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { return }
                pending += buffer[0..<n]
            }
            request.body = Array(pending.prefix(length))
            pending.removeFirst(length)
            index += 1
            self.state.withLock { $0.requests.append(request) }
            for step in respond(request) {
                switch step {
                case .send(let text):
                    guard writeAll(fd, text) else { return }
                case .pause(let duration):
                    usleep(UInt32(duration / .microseconds(1)))
                case .wait(let cue):
                    cue.wait()
                case .close:
                    return
                case .reset:
                    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                    setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                    close(fd)
                    closed = true
                    return
                }
            }
        }
    }
}

extension RecordingServer.Step {
    /// A response with `Content-Length` (the body is left out for a HEAD, as RFC 9110 §9.3.2 asks) and
    /// `extra` header lines.
    static func ok(
        _ request: RecordingServer.Request, body: String = "hello", status: String = "200 OK", extra: [String] = []
    ) -> RecordingServer.Step {
        let lines = ["HTTP/1.1 \(status)", "Content-Length: \(body.utf8.count)"] + extra
        return .send(lines.joined(separator: "\r\n") + "\r\n\r\n" + (request.method == "HEAD" ? "" : body))
    }
}

extension RecordingServer {
    /// A keep-alive server: every answer carries `Content-Length: bodySize` (`hello…` for a GET, nothing for
    /// a HEAD). With `dropsIdleConnections`, each connection answers one request, then reads the next and
    /// closes without an answer: the race a client meets when a server drops a kept-alive connection as a
    /// request arrives.
    static func keepAlive(host: String = "127.0.0.1", dropsIdleConnections: Bool = false, bodySize: Int = 5) throws
        -> RecordingServer
    {
        try RecordingServer(host: host) { request in
            if dropsIdleConnections, request.indexOnConnection > 0 { return [.close] }
            return [.ok(request, body: String(repeating: "hello", count: bodySize / 5))]
        }
    }

    /// A server that answers badly, by path: `/reset` resets the connection, `/garbage` answers something
    /// that is not HTTP, `/huge-headers` sends a megabyte of headers, `/trickle` sends its headers one byte
    /// every 100 ms, and `/short` promises 100 bytes of body and closes after 5.
    static func misbehaving() throws -> RecordingServer {
        try RecordingServer { request in
            switch request.path {
            case "/reset":
                return [.reset]
            case "/garbage":
                return [.send("SSH-2.0-OpenSSH_9.2\r\nthis is not http\r\n\r\n"), .close]
            case "/huge-headers":
                var text = "HTTP/1.1 200 OK\r\n"
                for i in 0..<1000 { text += "X-Filler-\(i): " + String(repeating: "x", count: 1000) + "\r\n" }
                return [.send(text + "Content-Length: 0\r\n\r\n"), .close]
            case "/trickle":
                let head = "HTTP/1.1 200 OK\r\nX-Slow: " + String(repeating: "z", count: 600) + "\r\n\r\n"
                return head.flatMap { [.send(String($0)), .pause(.milliseconds(100))] } + [.close]
            case "/short":
                return [.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"), .close]
            default:
                return [.ok(request, body: ""), .close]
            }
        }
    }
}
