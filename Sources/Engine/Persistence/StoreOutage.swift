import Logging
import Synchronization

/// StoreOutage says once when the shared schedule's PostgreSQL stops answering and once when it answers
/// again, in words, however many statements fail in between: the claimer, the writer and the leader loop
/// (``PollerPool``'s run on a ``SharedSchedule``) tell it what their statements met.
///
/// An outage starts at the first failure: a statement given up after ``PostgresStore/statementTimeout``
/// (a server that does not answer), an error (a server that refuses), or the leader's connection closed
/// by the server (a restart, seen within a second). It ends at the first statement through the pool that
/// is answered.
final class StoreOutage: Sendable {
    private struct Inside {
        var since: ContinuousClock.Instant?
        var stopped = false
    }

    private let inside = Mutex(Inside())
    private let logger: Logger
    private let location: PostgresLocation

    /// Where `/healthz` is told while the store does not answer, if anywhere.
    private let metrics: ClusterMetrics?

    init(location: PostgresLocation, logger: Logger, metrics: ClusterMetrics? = nil) {
        self.location = location
        self.logger = logger
        self.metrics = metrics
    }

    /// Whether the store is not answering now.
    var isDown: Bool { self.inside.withLock { $0.since != nil } }

    /// A statement failed; `words` say what could not be done and why (a ``HistoryError``'s description).
    /// Logged at error level when the store was answering until now. Not when urlpoll is stopping: the
    /// failure is then its own doing.
    func failed(_ words: String) {
        guard !Task.isCancelled else { return }
        let started = self.inside.withLock { inside -> Bool in
            guard inside.since == nil, !inside.stopped else { return false }
            inside.since = .now
            return true
        }
        guard started else { return }
        self.metrics?.problem(
            .store, "\(self.location) does not answer: this instance can neither claim URLs nor write polls back")
        self.logger.error(
            "\(words); polls in flight go on, and claims and write-backs are tried again with backoff (0.1 s doubling to 5 s) until it answers; their results are written and alerted then"
        )
    }

    /// urlpoll is stopping: what fails from now on is its own doing, and is not said.
    func stop() {
        self.inside.withLock { $0.stopped = true }
    }

    /// A statement through the pool was answered. Logged at notice level when the store was not answering.
    func answered() {
        let since = self.inside.withLock { inside -> ContinuousClock.Instant? in
            defer { inside.since = nil }
            return inside.since
        }
        guard let since else { return }
        self.metrics?.problem(.store, nil)
        let seconds = (ContinuousClock.now - since).seconds
        self.logger.notice(
            "\(self.location) answers again (after \(formatSeconds((seconds * 10).rounded() / 10)) s without it); claiming and writing back resume"
        )
    }
}
