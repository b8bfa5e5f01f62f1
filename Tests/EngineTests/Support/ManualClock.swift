import Synchronization

/// ManualClock is a clock that moves only when a test advances it. Every sleep it is asked for is
/// published on `sleeps`, so a test both waits for the engine to reach a sleep and asserts its length.
final class ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration

        func advanced(by duration: Duration) -> Instant { Instant(offset: self.offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - self.offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        let id: Int
        let deadline: Instant
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct Storage {
        var now = Instant(offset: .zero)
        var sleepers: [Sleeper] = []
        var nextID = 0
    }

    private let storage = Mutex(Storage())
    /// The length of every sleep requested, in the order requested.
    let sleeps: AsyncStream<Duration>
    private let sleepsContinuation: AsyncStream<Duration>.Continuation

    init() {
        (self.sleeps, self.sleepsContinuation) = AsyncStream.makeStream()
    }

    var now: Instant { self.storage.withLock { $0.now } }
    var minimumResolution: Duration { .nanoseconds(1) }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = self.storage.withLock { storage in
            storage.nextID += 1
            return storage.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let action: (Duration, Bool?) = self.storage.withLock { storage in
                    if Task.isCancelled { return (.zero, false) }
                    // A deadline the clock has passed (moved on since the caller looked) ends the sleep at
                    // once, as a real clock's does; it is still published.
                    if deadline <= storage.now { return (storage.now.duration(to: deadline), nil) }
                    storage.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return (storage.now.duration(to: deadline), true)
                }
                switch action.1 {
                case true?: self.sleepsContinuation.yield(action.0)
                case false?: continuation.resume(throwing: CancellationError())
                case nil:
                    self.sleepsContinuation.yield(action.0)
                    continuation.resume()
                }
            }
        } onCancel: {
            let sleeper = self.storage.withLock { storage -> Sleeper? in
                guard let i = storage.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return storage.sleepers.remove(at: i)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    func advance(by duration: Duration) {
        let due = self.storage.withLock { storage -> [Sleeper] in
            storage.now = storage.now.advanced(by: duration)
            let now = storage.now
            let due = storage.sleepers.filter { $0.deadline <= now }
            storage.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Sleepers still waiting.
    var pendingSleeps: Int { self.storage.withLock { $0.sleepers.count } }
}
