import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// AlertDispatcher delivers the alerts hooks record, with its own concurrency limit, a timeout per attempt
/// and retries with exponential backoff. Polling never waits for it, and a failed alert waits for its retry
/// without holding a delivery slot, so a dead receiver never holds up alerts to working ones; and one
/// receiver's attempts under way are limited (``Configuration/perReceiver``), so a receiver that takes
/// connections but never answers holds at most its own share of the slots, never another receiver's.
///
/// On shutdown it stops taking new alerts and keeps delivering what is queued for at most
/// ``Configuration/shutdownGrace``; whatever is still undelivered then is logged as such, never dropped
/// silently.
public final class AlertDispatcher<C: Clock>: AlertSink, Service where C.Duration == Duration {
    public struct Configuration: Sendable {
        /// Attempts under way at once (default 4). An alert waiting for its retry holds none.
        public var concurrency = 4
        /// Attempts under way at once to one receiver (default 2): a webhook's origin (scheme, host and port,
        /// RFC 6454), or an exec alert's command. The receiver's other alerts wait, holding no slot, until
        /// one of its attempts ends; alerts to other receivers go ahead of them.
        public var perReceiver = 2
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
            await self.deliverAll()
        } onGracefulShutdown: {
            self.finish()
        }
        let left = self.outstanding.withLock { $0 }
        if left > 0 {
            self.logger.error("\(left) alert(s) not delivered: urlpoll stopped before they were sent")
        }
    }

    /// One alert on its way: its attempts so far, the last one's failure, and the wait before the next.
    private struct Delivery: Sendable {
        var alert: Alert
        var attempts = 0
        var lastError = "no attempt made"
        var delay: Duration
        /// Set when shutdown's grace ran out before the next attempt.
        var outOfTime = false
        var delivered = false
    }

    /// What the delivery loop hears from its child tasks.
    private enum Event: Sendable {
        /// The next alert from the queue, or nil once the queue is finished and drained.
        case taken(Alert?)
        /// An attempt ended (delivered, failed, or not made for want of time).
        case attempted(Delivery)
        /// A failed alert's wait before its next attempt is over.
        case due(Delivery)
    }

    /// The delivery loop. A slot (``Configuration/concurrency``) is held only while an attempt runs: a failed
    /// alert waits for its retry on the clock without one, so a dead receiver's retries never hold up alerts
    /// to working ones. A receiver has at most ``Configuration/perReceiver`` alerts ready or under way; its
    /// others wait in its own line, holding nothing, so a hung receiver never holds up alerts to working ones
    /// either. Due retries take free slots before new alerts, and a new alert is read from the queue only
    /// when a slot is free, so a full queue still drops its oldest.
    private func deliverAll() async {
        await withTaskGroup(of: Event.self) { group in
            var attempting = 0
            var reading = false
            var drained = false
            // Due retries, and alerts read from the queue, waiting for a slot; their receivers have room.
            var ready: [Delivery] = []
            // Per receiver: its alerts ready or under way, and those waiting for one of them to end.
            var held: [String: Int] = [:]
            var waiting: [String: CircularBuffer<Delivery>] = [:]
            var waitingCount = 0
            let perReceiver = max(1, self.configuration.perReceiver)
            func arrive(_ delivery: Delivery) {
                let receiver = delivery.alert.receiver
                if held[receiver, default: 0] < perReceiver {
                    held[receiver, default: 0] += 1
                    ready.append(delivery)
                } else {
                    waiting[receiver, default: []].append(delivery)
                    waitingCount += 1
                }
            }
            func leave(_ delivery: Delivery) {
                let receiver = delivery.alert.receiver
                if let next = waiting[receiver]?.popFirst() {
                    if waiting[receiver]?.isEmpty == true { waiting[receiver] = nil }
                    waitingCount -= 1
                    ready.append(next)
                } else {
                    let count = held[receiver, default: 1] - 1
                    held[receiver] = count > 0 ? count : nil
                }
            }
            while true {
                while attempting < self.configuration.concurrency, !ready.isEmpty {
                    let next = ready.removeFirst()
                    attempting += 1
                    group.addTask { .attempted(await self.attempt(next)) }
                }
                if attempting < self.configuration.concurrency, ready.isEmpty, !reading, !drained,
                    waitingCount < self.configuration.queueLimit
                {
                    reading = true
                    group.addTask {
                        // One reader at a time: the queue's single consumer.
                        var queue = self.queue.makeAsyncIterator()
                        return .taken(await queue.next())
                    }
                }
                guard let event = await group.next() else { break }
                switch event {
                case .taken(let alert):
                    reading = false
                    if let alert {
                        arrive(Delivery(alert: alert, delay: self.configuration.retryDelay))
                    } else {
                        drained = true
                    }
                case .attempted(let delivery):
                    attempting -= 1
                    leave(delivery)
                    if let retry = self.afterAttempt(delivery) {
                        group.addTask { .due(await self.waitForRetry(retry)) }
                    }
                case .due(let delivery):
                    arrive(delivery)
                }
            }
        }
    }

    /// Makes one attempt, within the attempt's timeout and shutdown's grace.
    private func attempt(_ delivery: Delivery) async -> Delivery {
        var delivery = delivery
        var timeout = self.configuration.timeout
        if let remaining = self.remaining() {
            guard remaining > .zero else {
                delivery.outOfTime = true
                return delivery
            }
            timeout = min(timeout, remaining)
        }
        delivery.attempts += 1
        do {
            try await self.transport.deliver(delivery.alert, timeout: timeout)
            delivery.delivered = true
        } catch {
            delivery.lastError = "\(error)"
        }
        return delivery
    }

    /// Logs how an attempt went; returns the delivery when it is to be tried again, or finishes it.
    private func afterAttempt(_ delivery: Delivery) -> Delivery? {
        let metadata: Logger.Metadata = ["alert": "\(delivery.alert.summary)"]
        if delivery.delivered {
            self.logger.debug("alert delivered", metadata: metadata)
            self.finished(delivery.alert, .delivered)
            return nil
        }
        if delivery.outOfTime {
            self.logger.error("alert not delivered before shutdown (\(delivery.lastError))", metadata: metadata)
            self.finished(delivery.alert, .failed)
            return nil
        }
        guard delivery.attempts < self.configuration.attempts else {
            self.logger.error(
                "alert not delivered after \(self.configuration.attempts.counted("attempt")): \(delivery.lastError)",
                metadata: metadata)
            self.finished(delivery.alert, .failed)
            return nil
        }
        self.logger.warning(
            "alert attempt \(delivery.attempts) failed: \(delivery.lastError); retrying in \(formatSeconds(delivery.delay.seconds)) s",
            metadata: metadata)
        return delivery
    }

    /// Waits, holding no slot, until the delivery's next attempt is due (sooner if shutdown's grace ends
    /// first), and doubles its next wait.
    private func waitForRetry(_ delivery: Delivery) async -> Delivery {
        var delivery = delivery
        let wait = self.remaining().map { min(delivery.delay, $0) } ?? delivery.delay
        try? await self.clock.sleep(for: wait)
        delivery.delay *= 2
        return delivery
    }

    private func finished(_ alert: Alert, _ result: AlertResult) {
        self.changeOutstanding(by: -1)
        self.observer?.alertFinished(alert, result)
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
}
