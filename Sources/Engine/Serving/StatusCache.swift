import Synchronization

/// StatusCache keeps the last ``StatusDocument`` the listener made, and its JSON, so `GET /status` and the
/// page at `/` read the `--data` store once per tick, not once per request.
///
/// A document is served again, for the same script (``MetricsSource/Current/version``):
/// - while it is newer than `maxAge` (the `status_interval`: the monitor's states are reported once a tick
///   anyway) and no batch has been written to the store since it was made (``HistoryStore/generation``);
/// - and, whatever was written since, while it is newer than ``costFactor`` times what it took to make, so
///   that at many URLs, where one document takes seconds, making them takes at most 1/``costFactor`` of a
///   core however often `/status` is asked for.
///
/// One document is made at a time: requests that come while it is made wait for it.
final class StatusCache: Sendable {
    /// A document and its JSON bytes.
    struct Made: Sendable {
        let document: StatusDocument
        let json: [UInt8]
    }

    private struct Key: Equatable {
        var script: Int
        var generation: Int
    }

    private struct Entry {
        var key: Key
        var made: Double
        var task: Task<Result<Made, HistoryError>, Never>
        /// Seconds it took to make; nil while it is made.
        var cost: Double?
    }

    /// A document is kept at least this many times as long as it took to make.
    static let costFactor = 4.0

    private let entry = Mutex<Entry?>(nil)
    private let now: @Sendable () -> Double

    /// - Parameter now: The clock, in seconds (a clock set back makes the next request read anew).
    init(now: @escaping @Sendable () -> Double) {
        self.now = now
    }

    /// The document for `script` (a ``MetricsSource/Current/version``) while the store is at `generation`:
    /// the cached one while it is fresh (see ``StatusCache``), else the one `make` makes.
    /// - Throws: ``HistoryError`` from `make`.
    func document(
        script: Int, generation: Int, maxAge: Duration,
        make: @escaping @Sendable () async -> Result<Made, HistoryError>
    ) async throws(HistoryError) -> Made {
        let key = Key(script: script, generation: generation)
        let now = self.now()
        let task = self.entry.withLock { entry -> Task<Result<Made, HistoryError>, Never> in
            if let current = entry, current.key.script == key.script, now >= current.made {
                let age = now - current.made
                guard let cost = current.cost else { return current.task }  // being made
                if age < cost * Self.costFactor || (current.key == key && age < maxAge.seconds) {
                    return current.task
                }
            }
            let clock = self.now
            let task = Task { [self] in
                let start = clock()
                let result = await make()
                let cost = max(0, clock() - start)
                self.entry.withLock { entry in
                    if entry?.key == key, entry?.made == now { entry?.cost = cost }
                }
                return result
            }
            entry = Entry(key: key, made: now, task: task)
            return task
        }
        let result = await task.value
        if case .failure = result {
            // A failed read is not kept: the next request tries again.
            self.entry.withLock { entry in
                if entry?.key == key { entry = nil }
            }
        }
        return try result.get()
    }
}
