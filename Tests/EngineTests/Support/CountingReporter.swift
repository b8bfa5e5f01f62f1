import Engine
import Synchronization

/// CountingReporter counts reports, and keeps how many states the last one had.
final class CountingReporter: Reporter {
    private let seen = Mutex((count: 0, last: 0))
    var count: Int { self.seen.withLock { $0.count } }
    var last: Int { self.seen.withLock { $0.last } }

    func report(_ states: [State]) async {
        self.seen.withLock { $0 = ($0.count + 1, states.count) }
    }
}
