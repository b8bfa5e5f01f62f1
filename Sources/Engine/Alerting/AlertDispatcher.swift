import Logging
import ServiceLifecycle
import Synchronization

/// AlertDispatcher delivers the alerts hooks record, with its own concurrency limit, a timeout per attempt
/// and retries with exponential backoff. Polling never waits for it.
///
/// On shutdown it stops taking new alerts and keeps delivering what is queued for at most
/// ``Configuration/shutdownGrace``; whatever is still undelivered then is logged as such, never dropped
/// silently.
public final class AlertDispatcher<C: Clock>: AlertSink, Service where C.Duration == Duration {
    public struct Configuration: Sendable {
        /// Deliveries in flight at once (default 4).
        public var concurrency = 4
        /// Attempts per alert, the first included (default 4).
        public var attempts = 4
        /// The wait before the first retry, doubled before each next one (default 1 s: 1, 2, 4 s).
        public var retryDelay: Duration = .seconds(1)
        /// Time one attempt may take (default 10 s).
        public var timeout: Duration = .seconds(10)
        /// How long queued alerts are still delivered after shutdown begins (default 5 s).
        public var shutdownGrace: Duration = .seconds(5)
        /// Alerts waiting at most (default 10,000). When the queue is full the oldest waiting alert is
        /// dropped for the new one, so the latest news of a URL (a recovery) is what gets delivered; the drops
        /// are counted and logged at most once per ``overflowLogInterval``.
        public var queueLimit = 10_000
        /// The shortest time between two log lines about a full queue (default 10 s).
        public var overflowLogInterval: Duration = .seconds(10)

        public init() {}
    }

    private let configuration: Configuration
    private let transport: any AlertTransport
    private let clock: C
    private let logger: Logger
    private let queue: AsyncStream<Alert>
    private let continuation: AsyncStream<Alert>.Continuation
    /// Set once shutdown begins: the instant after which nothing more is attempted.
    private let deadline = Mutex<C.Instant?>(nil)
    /// Alerts taken but not yet delivered or reported.
    private let outstanding = Mutex(0)
    /// Alerts dropped from a full queue since the last line that said so.
    private let overflowed = Mutex(0)
    private let overflowLog: LogLimiter
    private let observer: (any AlertObserver)?

    /// - Parameter observer: Told each alert's end and the queue's length (urlpoll's metrics), or nil.
    public init(
        configuration: Configuration = Configuration(), transport: any AlertTransport, clock: C, logger: Logger,
        observer: (any AlertObserver)? = nil
    ) {
        self.configuration = configuration
        self.transport = transport
        self.clock = clock
        self.logger = logger
        self.observer = observer
        self.overflowLog = LogLimiter(burst: 1, window: configuration.overflowLogInterval)
        (self.queue, self.continuation) = AsyncStream.makeStream(
            bufferingPolicy: .bufferingNewest(configuration.queueLimit))
    }

    public func enqueue(_ alert: Alert) {
        self.changeOutstanding(by: 1)
        switch self.continuation.yield(alert) {
        case .enqueued:
            break
        case .dropped(let oldest):
            self.changeOutstanding(by: -1)
            self.observer?.alertFinished(oldest, .dropped)
            let dropped = self.overflowed.withLock { n in
                n += 1
                return n
            }
            guard self.overflowLog.admit("overflow").pass else { break }
            self.overflowed.withLock { $0 -= dropped }
            self.logger.error(
                "\(dropped) alert\(dropped == 1 ? "" : "s") not delivered: the queue is full (\(self.configuration.queueLimit) waiting), so the oldest are dropped for the newest",
                metadata: ["alert": "\(oldest.summary)"])
        case .terminated:
            self.changeOutstanding(by: -1)
            self.observer?.alertFinished(alert, .dropped)
            self.logger.error("alert not delivered: urlpoll is shutting down", metadata: ["alert": "\(alert.summary)"])
        @unknown default:
            break
        }
    }

    /// Delivers alerts until ``finish()`` (or graceful shutdown) and the queue is drained.
    public func run() async {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                for await alert in self.queue {
                    if running >= self.configuration.concurrency {
                        await group.next()
                        running -= 1
                    }
                    group.addTask { await self.deliver(alert) }
                    running += 1
                }
            }
        } onGracefulShutdown: {
            self.finish()
        }
        let left = self.outstanding.withLock { $0 }
        if left > 0 {
            self.logger.error("\(left) alert(s) not delivered: urlpoll stopped before they were sent")
        }
    }

    /// Stops taking alerts; what is queued is still delivered within the shutdown grace.
    public func finish() {
        self.deadline.withLock { deadline in
            if deadline == nil { deadline = self.clock.now.advanced(by: self.configuration.shutdownGrace) }
        }
        self.continuation.finish()
    }

    private func remaining() -> Duration? {
        self.deadline.withLock { $0 }.map { self.clock.now.duration(to: $0) }
    }

    /// Counts alerts taken and not yet finished, and tells the observer the new length.
    private func changeOutstanding(by delta: Int) {
        let length = self.outstanding.withLock { n in
            n += delta
            return n
        }
        self.observer?.alertQueueChanged(length: length)
    }

    private func deliver(_ alert: Alert) async {
        var result = AlertResult.failed
        defer {
            self.changeOutstanding(by: -1)
            self.observer?.alertFinished(alert, result)
        }
        let metadata: Logger.Metadata = ["alert": "\(alert.summary)"]
        var delay = self.configuration.retryDelay
        var lastError = "no attempt made"
        for attempt in 1...self.configuration.attempts {
            var timeout = self.configuration.timeout
            if let remaining = self.remaining() {
                guard remaining > .zero else {
                    self.logger.error("alert not delivered before shutdown (\(lastError))", metadata: metadata)
                    return
                }
                timeout = min(timeout, remaining)
            }
            do {
                try await self.transport.deliver(alert, timeout: timeout)
                self.logger.debug("alert delivered", metadata: metadata)
                result = .delivered
                return
            } catch {
                lastError = "\(error)"
            }
            guard attempt < self.configuration.attempts else { break }
            self.logger.warning(
                "alert attempt \(attempt) failed: \(lastError); retrying in \(formatSeconds(delay.seconds)) s",
                metadata: metadata)
            let wait = self.remaining().map { min(delay, $0) } ?? delay
            try? await self.clock.sleep(for: wait)
            delay *= 2
        }
        self.logger.error(
            "alert not delivered after \(self.configuration.attempts) attempts: \(lastError)", metadata: metadata)
    }
}
