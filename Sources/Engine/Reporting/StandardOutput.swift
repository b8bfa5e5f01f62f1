import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// StandardOutput owns file descriptor 1: every line urlpoll prints (the reporters, JSON lines, Lua's
/// `print`) is put in a bounded buffer and written by one writer of its own, off the engine's tasks, so a reader that is slow, stopped
/// or gone never blocks a poll, a tick or a hook.
///
/// - When the buffer holds more than ``Configuration/capacity`` bytes, further writes are dropped whole and
///   their lines counted; a warning says so at most once per ``Configuration/warningInterval``
///   (`stdout is blocked: 1200 lines dropped`).
/// - A write that fails (`ENOSPC` under a full disk, `EIO`, …) drops that text and is reported the same way,
///   with the error's words (`cannot write to standard output: No space left on device: 3 lines dropped`).
/// - `EPIPE` (the reader has gone, as in `urlpoll run x.lua | head -1`) closes the output: later writes are
///   dropped silently, and ``waitUntilClosed()`` returns so the command can stop cleanly. SIGPIPE is
///   ignored (as SwiftNIO does for its sockets) so that the write fails with `EPIPE` instead of killing the
///   process. Source: write(2), pipe(7) ("If all file descriptors referring to the read end of a pipe have
///   been closed, then a write(2) will cause a SIGPIPE signal… If the calling process is ignoring this
///   signal, then write(2) fails with the error EPIPE").
public final class StandardOutput: Sendable {
    public struct Configuration: Sendable {
        /// Bytes that may wait for the reader before writes are dropped (default 8 MiB). A write is taken
        /// whole while the buffer is below this, so one tick's report is never cut in the middle.
        public var capacity = 8 << 20
        /// The shortest time between two warnings about dropped lines (default 10 s).
        public var warningInterval: Duration = .seconds(10)

        public init() {}
    }

    /// The process's standard output.
    public static let shared = StandardOutput(
        descriptor: 1, logger: Logger(label: "urlpoll") { StreamLogHandler.standardError(label: $0) })

    private struct Buffer {
        /// Texts waiting, oldest first, from `head` on.
        var chunks: [String] = []
        var head = 0
        /// Bytes in `chunks[head...]` and in the chunk being written.
        var bytes = 0
        /// Whether the writer thread holds a chunk.
        var writing = false
        /// Whether the writer thread is waiting for text.
        var idle = false
        /// Bytes handed to write(2) successfully since start; drain waits while this moves.
        var written = 0
        /// Lines dropped since the last warning, and why.
        var dropped = 0
        var reason = ""
        /// Lines dropped in all.
        var droppedTotal = 0
        /// Set on EPIPE: the reader has gone.
        var closed = false
        var closedWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    private let descriptor: Int32
    private let configuration: Configuration
    private let logger: Logger
    private let warnings: LogLimiter
    private let buffer = Mutex(Buffer())
    private let wake = DispatchSemaphore(value: 0)
    private let progress = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - descriptor: The file descriptor to own (1 for the process's standard output; a pipe in tests).
    ///   - logger: Where warnings about dropped lines go (standard error for the program).
    ///   - now: Seconds on some monotonic scale, for the warnings' rate limit (injected in tests).
    public init(
        descriptor: Int32, configuration: Configuration = Configuration(), logger: Logger,
        now: (@Sendable () -> Double)? = nil
    ) {
        signal(SIGPIPE, SIG_IGN)
        self.descriptor = descriptor
        self.configuration = configuration
        self.logger = logger
        self.warnings = LogLimiter(burst: 1, window: configuration.warningInterval, now: now)
        // A serial queue of its own: Dispatch gives its work item a thread outside Swift's cooperative pool,
        // so the writer blocking in write(2) takes no thread from the engine's tasks.
        DispatchQueue(label: "urlpoll.stdout").async { [self] in self.writeLoop() }
    }

    /// Queues `text` for the reader and returns at once; never blocks on the reader.
    public func write(_ text: String) {
        guard !text.isEmpty else { return }
        let (signal, warning) = self.buffer.withLock { buffer -> (Bool, String?) in
            guard !buffer.closed else { return (false, nil) }
            guard buffer.bytes < self.configuration.capacity else {
                return (false, self.drop(Self.lines(in: text), reason: "stdout is blocked", &buffer))
            }
            buffer.chunks.append(text)
            buffer.bytes += text.utf8.count
            let signal = buffer.idle
            buffer.idle = false
            return (signal, nil)
        }
        if signal { self.wake.signal() }
        if let warning { self.logger.warning("\(warning)") }
    }

    /// Lines dropped in all since start.
    public var droppedLines: Int { self.buffer.withLock { $0.droppedTotal } }

    /// Whether the reader has gone (a write failed with EPIPE).
    public var isClosed: Bool { self.buffer.withLock { $0.closed } }

    /// Returns when the reader has gone (a write failed with EPIPE), or when the task is cancelled.
    public func waitUntilClosed() async {
        let id = self.buffer.withLock { buffer in
            buffer.nextWaiter += 1
            return buffer.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.buffer.withLock { buffer in
                    if buffer.closed || Task.isCancelled { return true }
                    buffer.closedWaiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.buffer.withLock { $0.closedWaiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Waits until everything queued is written, the output is closed, or the reader has taken nothing for
    /// `patience` (a reader that stopped reading must not keep urlpoll from exiting). For the end of the
    /// process; blocks the calling thread.
    public func drain(patience: Duration = .seconds(2)) {
        var lastWritten = -1
        var deadline = DispatchTime.now()
        while true {
            let (done, written) = self.buffer.withLock { buffer in
                (buffer.closed || (buffer.bytes == 0 && !buffer.writing), buffer.written)
            }
            if done { break }
            if written != lastWritten {
                lastWritten = written
                deadline = .now() + .nanoseconds(Int(patience.seconds * 1e9))
            }
            guard DispatchTime.now() < deadline else { break }
            _ = self.progress.wait(timeout: min(deadline, .now() + .milliseconds(50)))
        }
        let held = self.buffer.withLock { buffer in
            defer { buffer.dropped = 0 }
            return (lines: buffer.dropped, reason: buffer.reason)
        }
        if held.lines > 0 { self.logger.warning("\(held.reason): \(held.lines.counted("line")) dropped") }
    }

    /// Counts a drop, and returns the warning to log when one is due. Called under the lock.
    private func drop(_ lines: Int, reason: String, _ buffer: inout Buffer) -> String? {
        buffer.dropped += lines
        buffer.droppedTotal += lines
        buffer.reason = reason
        guard self.warnings.admit("dropped").pass else { return nil }
        defer { buffer.dropped = 0 }
        return "\(buffer.reason): \(buffer.dropped.counted("line")) dropped"
    }

    private static func lines(in text: String) -> Int {
        max(1, text.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) })
    }

    // MARK: The writer thread

    private func writeLoop() {
        while true {
            let next: String? = self.buffer.withLock { buffer in
                guard buffer.head < buffer.chunks.count else {
                    buffer.chunks.removeAll(keepingCapacity: buffer.chunks.count < 1024)
                    buffer.head = 0
                    buffer.idle = true
                    return nil
                }
                let chunk = buffer.chunks[buffer.head]
                buffer.chunks[buffer.head] = ""
                buffer.head += 1
                buffer.writing = true
                return chunk
            }
            guard let chunk = next else {
                self.progress.signal()
                self.wake.wait()
                continue
            }
            let failure = self.writeAll(chunk)
            let warning = self.buffer.withLock { buffer -> String? in
                buffer.writing = false
                buffer.bytes -= chunk.utf8.count
                switch failure {
                case nil:
                    buffer.written += chunk.utf8.count
                    return nil
                case EPIPE?:
                    buffer.closed = true
                    buffer.bytes = 0
                    buffer.chunks = []
                    buffer.head = 0
                    let waiters = buffer.closedWaiters.values
                    buffer.closedWaiters = [:]
                    for waiter in waiters { waiter.resume() }
                    return nil
                case let error?:
                    let words = String(cString: strerror(error))
                    return self.drop(
                        Self.lines(in: chunk), reason: "cannot write to standard output: \(words)", &buffer)
                }
            }
            self.progress.signal()
            if let warning { self.logger.warning("\(warning)") }
            if self.isClosed { return }
        }
    }

    /// Writes all of `text`, waiting for the descriptor when it is non-blocking; the errno on failure.
    private func writeAll(_ text: String) -> Int32? {
        var text = text
        return text.withUTF8 { bytes -> Int32? in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(self.descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if n >= 0 {
                    offset += n
                    continue
                }
                switch errno {
                case EINTR:
                    continue
                case EAGAIN, EWOULDBLOCK:
                    var ready = pollfd(fd: self.descriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&ready, 1, 1000)
                case let error:
                    return error
                }
            }
            return nil
        }
    }
}
