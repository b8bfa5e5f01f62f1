import Synchronization

/// Outbox is where polls leave their completions for the writer, and counts polls in flight (claimed and
/// not yet written back), for the claimer's room, by row: the rows whose leases this instance uses.
final class Outbox: Sendable {
    private struct Contents {
        var completions: [PostgresStore.Completion] = []
        var inFlight = 0
        /// Polls in flight by row id (a row's newer claim may start while its older poll awaits its write).
        var rows: [Int64: Int] = [:]
        /// No poll starts any more (``close()``).
        var closed = false

        /// Whether the last poll in flight of a closed outbox ended now.
        mutating func end(_ row: Int64) -> Bool {
            self.inFlight -= 1
            let left = (self.rows[row] ?? 1) - 1
            self.rows[row] = left > 0 ? left : nil
            return self.closed && self.inFlight == 0
        }
    }

    private let contents = Mutex(Contents())
    /// One element when completions may have come since the last was taken.
    let signals: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation

    init() {
        (self.signals, self.signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    var inFlight: Int { self.contents.withLock { $0.inFlight } }

    /// The rows of the polls in flight: the leases this instance uses.
    var held: Set<Int64> { self.contents.withLock { Set($0.rows.keys) } }

    /// A poll of row `row` started.
    func started(_ row: Int64) {
        self.contents.withLock {
            $0.inFlight += 1
            $0.rows[row, default: 0] += 1
        }
    }

    /// A poll of row `row` ended without a completion (cut short by shutdown).
    func abandoned(_ row: Int64) {
        if self.contents.withLock({ $0.end(row) }) { self.signal.finish() }
    }

    /// A completion of row `row` was written back, or replaced by a newer one of the same row.
    func finished(_ row: Int64) {
        if self.contents.withLock({ $0.end(row) }) { self.signal.finish() }
    }

    /// No poll starts any more: `signals` ends once every poll in flight is written back or abandoned.
    func close() {
        let drained = self.contents.withLock { contents in
            contents.closed = true
            return contents.inFlight == 0
        }
        if drained { self.signal.finish() }
    }

    /// Whether ``close()`` was called.
    var isClosed: Bool { self.contents.withLock { $0.closed } }

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
