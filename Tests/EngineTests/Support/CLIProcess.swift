import Foundation

struct CLIError: Error, CustomStringConvertible {
    let message: String
    var description: String { self.message }
}

/// A running urlpoll process, with its output collected as it arrives.
///
/// Each pipe is read by a thread of its own with blocking reads until end of file, not with
/// `FileHandle.readabilityHandler`: on Linux that handler is a dispatch source, and clearing it while the
/// pipe is then read to its end and closed crashed the test process once in libdispatch's manager
/// (`_dispatch_event_loop_drain`, a bad pointer: the source still registered for a closed descriptor).
final class CLIProcess: @unchecked Sendable {
    // @unchecked: `output` and `errors` are only touched under `lock`.
    private let process = Process()
    private let lock = NSLock()
    private var output = Data()
    private var errors = Data()
    private let outPipe = Pipe()
    private let errPipe = Pipe()
    /// Signalled once by each reader thread at its pipe's end of file.
    private let readersDone = DispatchSemaphore(value: 0)
    private var readers = 0

    /// - Parameters:
    ///   - environment: Variables to set for the child, on top of this process's own.
    ///   - standardOutput: A `Pipe` or `FileHandle` to give the process as its standard output instead of one
    ///     that is read and collected (a pipe nobody reads, `/dev/full`).
    init(
        _ arguments: [String], directory: URL = packageRoot, environment: [String: String] = [:],
        standardOutput: Any? = nil
    ) throws {
        self.process.executableURL = URL(fileURLWithPath: urlpollBinary)
        self.process.arguments = arguments
        if !environment.isEmpty {
            self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        self.process.currentDirectoryURL = directory
        self.process.standardOutput = standardOutput ?? self.outPipe
        self.process.standardError = self.errPipe
        try self.process.run()
        // The child holds its own copies of the write ends; ours are closed so the readers see end of file.
        if standardOutput == nil {
            try? self.outPipe.fileHandleForWriting.close()
            self.read(self.outPipe.fileHandleForReading) { process, data in process.output.append(data) }
        }
        try? self.errPipe.fileHandleForWriting.close()
        self.read(self.errPipe.fileHandleForReading) { process, data in process.errors.append(data) }
    }

    private func read(_ handle: FileHandle, into append: @escaping @Sendable (CLIProcess, Data) -> Void) {
        self.readers += 1
        let thread = Thread { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                self.lock.withLock { append(self, data) }
            }
            self.readersDone.signal()
        }
        thread.start()
    }

    var stdout: String { self.lock.withLock { String(decoding: self.output, as: UTF8.self) } }
    /// Whether the process has not exited yet.
    var isRunning: Bool { self.process.isRunning }
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

    var pid: Int32 { self.process.processIdentifier }

    func signal(_ signal: Int32) {
        kill(self.process.processIdentifier, signal)
    }

    /// Waits for the process to exit and returns its status, or nil if it is still running after `limit`;
    /// output read so far is complete afterwards.
    func wait(limit: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + limit
        while self.process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return self.process.isRunning ? nil : await self.wait()
    }

    /// Waits for the process to exit and returns its status; output read so far is complete afterwards.
    func wait() async -> Int32 {
        while self.process.isRunning {
            try? await Task.sleep(for: .milliseconds(20))
        }
        // The readers reach end of file once every holder of the write ends has gone (a grandchild the
        // process left running may hold them: then what was read within 10 s is what there is).
        for _ in 0..<self.readers {
            _ = self.readersDone.wait(timeout: .now() + 10)
        }
        self.readers = 0
        return self.process.terminationStatus
    }

    /// Runs urlpoll to completion.
    static func run(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try CLIProcess(arguments)
        let status = await process.wait()
        return (status, process.stdout, process.stderr)
    }
}

/// Runs `command` under bash with `arguments` as `$0`, `$1`, …, and returns its status and output, or nil
/// when it is still running after `limit` (then it is killed). For pipelines (`urlpoll … | head -1`).
func runShell(_ command: String, _ arguments: [String], limit: Duration) async throws -> (
    status: Int32, stdout: String, stderr: String
)? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", command] + arguments
    let (out, err) = (Pipe(), Pipe())
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let deadline = ContinuousClock.now + limit
    while process.isRunning, ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(20))
    }
    guard !process.isRunning else {
        kill(process.processIdentifier, SIGKILL)
        return nil
    }
    return (
        process.terminationStatus, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
        String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    )
}

/// The urlpoll binary built beside this test bundle.
let urlpollBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    .deletingLastPathComponent().appendingPathComponent("urlpoll").path
