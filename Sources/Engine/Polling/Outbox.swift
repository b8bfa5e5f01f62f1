import Synchronization

/// Outbox is where polls leave their completions for the writer, and counts polls in flight (claimed and
/// not yet written back), for the claimer's room.
final class Outbox: Sendable {
    private struct Contents {
        var completions: [PostgresStore.Completion] = []
        var inFlight = 0
    }

    private let contents = Mutex(Contents())
    /// One element when completions may have come since the last was taken.
    let signals: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation

    init() {
        (self.signals, self.signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    var inFlight: Int { self.contents.withLock { $0.inFlight } }

    func started() {
        self.contents.withLock { $0.inFlight += 1 }
    }

    func abandoned() {
        self.contents.withLock { $0.inFlight -= 1 }
    }

    func finished() {
        self.contents.withLock { $0.inFlight -= 1 }
    }

    func put(_ completion: PostgresStore.Completion) {
        self.contents.withLock { $0.completions.append(completion) }
        self.signal.yield()
    }

    func take() -> [PostgresStore.Completion] {
        self.contents.withLock { contents in
            defer { contents.completions = [] }
            return contents.completions
        }
    }
}
