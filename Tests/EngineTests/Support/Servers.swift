import DemoSite
import Foundation
import Hummingbird
import Logging

/// Runs `body` with the demo site listening on a free loopback port, and stops the site afterwards, on
/// both the success and the error path.
func withDemoSite(_ body: @Sendable (_ base: String) async throws -> Void) async throws {
    var logger = Logger(label: "demo-site")
    logger.logLevel = .critical
    try await withApplication({ onReady in DemoSite.application(logger: logger, onReady: onReady) }, body)
}

/// Runs `body` with the application `make` builds (given the callback that learns its port) listening on
/// loopback, and stops it afterwards, on both the success and the error path.
func withApplication<App: ApplicationProtocol>(
    _ make: (@escaping @Sendable (Int) async -> Void) -> App, _ body: @Sendable (_ base: String) async throws -> Void
) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = make { port in continuation.yield(port) }
        group.addTask { try await app.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        do {
            try await body("http://127.0.0.1:\(port)")
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
    }
}

/// A TCP socket bound to a free loopback port, listening when `backlog` is given; returns it and the port.
func bindLoopback(listen backlog: Int32? = nil) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
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

/// The urlpoll binary built beside this test bundle.
let urlpollBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    .deletingLastPathComponent().appendingPathComponent("urlpoll").path

/// A running urlpoll process, with its output collected as it arrives.
final class CLIProcess: @unchecked Sendable {
    // @unchecked: `output` and `errors` are only touched under `lock`.
    private let process = Process()
    private let lock = NSLock()
    private var output = Data()
    private var errors = Data()
    private let outPipe = Pipe()
    private let errPipe = Pipe()

    init(_ arguments: [String], directory: URL = packageRoot) throws {
        self.process.executableURL = URL(fileURLWithPath: urlpollBinary)
        self.process.arguments = arguments
        self.process.currentDirectoryURL = directory
        self.process.standardOutput = self.outPipe
        self.process.standardError = self.errPipe
        self.outPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.lock.withLock { self?.output.append(data) }
        }
        self.errPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.lock.withLock { self?.errors.append(data) }
        }
        try self.process.run()
    }

    var stdout: String { self.lock.withLock { String(decoding: self.output, as: UTF8.self) } }
    var stderr: String { self.lock.withLock { String(decoding: self.errors, as: UTF8.self) } }

    /// Waits until standard output contains `text` `count` times; fails if the process ends first or
    /// `limit` passes.
    func waitForOutput(_ text: String, count: Int = 1, limit: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + limit
        while self.stdout.components(separatedBy: text).count - 1 < count {
            guard self.process.isRunning, ContinuousClock.now < deadline else {
                throw CLIError(message: "no \"\(text)\" ×\(count) in output:\n\(self.stdout)\n\(self.stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until standard error contains `text`; fails if the process ends first or `limit` passes.
    func waitForStderr(_ text: String, limit: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + limit
        while !self.stderr.contains(text) {
            guard self.process.isRunning, ContinuousClock.now < deadline else {
                throw CLIError(message: "no \"\(text)\" in standard error:\n\(self.stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func signal(_ signal: Int32) {
        kill(self.process.processIdentifier, signal)
    }

    /// Waits for the process to exit and returns its status; output read so far is complete afterwards.
    func wait() async -> Int32 {
        while self.process.isRunning {
            try? await Task.sleep(for: .milliseconds(20))
        }
        self.outPipe.fileHandleForReading.readabilityHandler = nil
        self.errPipe.fileHandleForReading.readabilityHandler = nil
        let restOut = self.outPipe.fileHandleForReading.readDataToEndOfFile()
        let restErr = self.errPipe.fileHandleForReading.readDataToEndOfFile()
        self.lock.withLock {
            self.output.append(restOut)
            self.errors.append(restErr)
        }
        return self.process.terminationStatus
    }

    /// Runs urlpoll to completion.
    static func run(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try CLIProcess(arguments)
        let status = await process.wait()
        return (status, process.stdout, process.stderr)
    }
}

struct CLIError: Error, CustomStringConvertible {
    let message: String
    var description: String { self.message }
}

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
