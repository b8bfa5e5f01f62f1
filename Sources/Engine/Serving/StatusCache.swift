import Synchronization

/// StatusCache keeps the last ``StatusDocument`` the listener made, and its JSON, so `GET /status` and the
/// page at `/` read the `--data` store once per tick, not once per request.
///
/// A document is served again while it is newer than `maxAge` (the `status_interval`: the monitor's states
/// are reported once a tick anyway) and no batch has been written to the store since it was made
/// (``HistoryStore/generation``), for the same script (``MetricsSource/Current/version``). Requests that
/// find it stale at the same time wait for one new document, made once.
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
    }

    private let entry = Mutex<Entry?>(nil)
    private let now: @Sendable () -> Double

    /// - Parameter now: The clock, in seconds (a clock set back makes the next request read anew).
    init(now: @escaping @Sendable () -> Double) {
        self.now = now
    }

    /// The document for `script` (a ``MetricsSource/Current/version``) while the store is at `generation`:
    /// the cached one while it is younger than `maxAge`, else the one `make` makes.
    /// - Throws: ``HistoryError`` from `make`.
    func document(
        script: Int, generation: Int, maxAge: Duration,
        make: @escaping @Sendable () async -> Result<Made, HistoryError>
    ) async throws(HistoryError) -> Made {
        let key = Key(script: script, generation: generation)
        let now = self.now()
        let task = self.entry.withLock { entry -> Task<Result<Made, HistoryError>, Never> in
            if let current = entry, current.key == key, now >= current.made, now - current.made < maxAge.seconds {
                return current.task
            }
            let task = Task { await make() }
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
