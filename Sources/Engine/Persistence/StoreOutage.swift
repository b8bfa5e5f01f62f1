import Logging
import Synchronization

/// StoreOutage says once when the shared schedule's PostgreSQL stops answering and once when it answers
/// again, in words, however many statements fail in between: the claimer, the writer and the leader loop
/// (``PollerPool``'s run on a ``SharedSchedule``) tell it what their statements met.
///
/// An outage starts at the first failure: a statement given up after ``PostgresStore/statementTimeout``
/// (a server that does not answer), an error (a server that refuses), or the leader's connection closed
/// by the server and no new one to be had (a restart, seen within a second). It ends once statements have
/// been answered for ``settling`` with no failure in between: the pool's connections that died with the
/// server fail one by one as they are next used, and those failures are the tail of the same outage, not
/// another. Its length is said from the last statement answered before it to the first answered after it,
/// not from when it was noticed (a frozen server is noticed only at a statement's time limit).
///
/// There is one per store (``PostgresStore/outage``), not per pool: a reload's pool whose URL list fails joins
/// the outage the pool before it was in (or had yet to notice), and its length still counts from the last
/// statement the pool before had answered.
final class StoreOutage: Sendable {
    /// How long statements must be answered, with no failure, before an outage is said to be over.
    static var settling: Duration { .seconds(3) }

    private struct Inside {
        /// The last statement answered.
        var lastAnswer: ContinuousClock.Instant?
        /// When the outage was noticed; nil while the store answers.
        var noticed: ContinuousClock.Instant?
        /// The last statement answered before the outage.
        var lastBefore: ContinuousClock.Instant?
        /// The first statement answered since the outage's last failure.
        var back: ContinuousClock.Instant?
        var stopped = false
        /// Where `/healthz` is told while the store does not answer, if anywhere.
        var metrics: ClusterMetrics?
    }

    private let inside = Mutex(Inside())
    private let logger: Logger
    private let location: PostgresLocation
    private let now: @Sendable () -> ContinuousClock.Instant

    /// - Parameter now: The time now (tests pass their own).
    init(
        location: PostgresLocation, logger: Logger, metrics: ClusterMetrics? = nil,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.location = location
        self.logger = logger
        self.now = now
        self.inside.withLock { $0.metrics = metrics }
    }

    /// Where `/healthz` is told from now on while the store does not answer (a reload's pool's).
    func shows(in metrics: ClusterMetrics?) {
        self.inside.withLock { $0.metrics = metrics }
    }

    private var metrics: ClusterMetrics? { self.inside.withLock { $0.metrics } }

    /// Whether the store is not answering now (or has not answered for ``settling`` since it did not).
    var isDown: Bool { self.inside.withLock { $0.noticed != nil } }

    /// A statement failed; `words` say what could not be done and why (a ``HistoryError``'s description).
    /// Logged at error level when the store was answering until now. Not when urlpoll is stopping: the
    /// failure is then its own doing.
    func failed(_ words: String) {
        guard !Task.isCancelled else { return }
        let started = self.inside.withLock { inside -> Bool in
            guard !inside.stopped else { return false }
            // Still down, or the tail of an outage whose end has not settled: the same outage.
            inside.back = nil
            guard inside.noticed == nil else { return false }
            inside.noticed = self.now()
            inside.lastBefore = inside.lastAnswer
            return true
        }
        guard started else { return }
        self.metrics?.problem(
            .store, "\(self.location) does not answer: this instance can neither claim URLs nor write polls back")
        self.logger.error(
            "\(words); polls in flight go on, and claims and write-backs are tried again with backoff (0.1 s doubling to 5 s) until it answers; their results are written and alerted then"
        )
    }

    /// urlpoll is stopping (not a reload): what fails from now on is its own doing, and is not said.
    func stop() {
        self.inside.withLock { $0.stopped = true }
    }

    /// A statement was answered. Logged at notice level when it ends an outage: the store answered for
    /// ``settling`` since the outage's last failure.
    func answered() {
        let now = self.now()
        let length = self.inside.withLock { inside -> Duration? in
            inside.lastAnswer = now
            guard let noticed = inside.noticed else { return nil }
            let back = inside.back ?? now
            inside.back = back
            guard back.duration(to: now) >= Self.settling else { return nil }
            defer {
                inside.noticed = nil
                inside.back = nil
            }
            return (inside.lastBefore ?? noticed).duration(to: back)
        }
        guard let length else { return }
        self.metrics?.problem(.store, nil)
        self.logger.notice(
            "\(self.location) answers again (after \(formatSeconds((length.seconds * 10).rounded() / 10)) s without it, from the last statement answered to the first answered again); claiming and writing back resume"
        )
    }
}
