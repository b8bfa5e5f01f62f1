import Synchronization

/// StatusCache keeps the last ``StatusDocument`` the listener made, and its JSON, so `GET /status` and the
/// page at `/` read the `--data` store once per tick, not once per request.
///
/// A document is served again, for the same script (``MetricsSource/Current/version``):
/// - while it is newer than `maxAge` (the `status_interval`), the monitor has not ticked since it was made
///   (its states are the last tick's: ``StateMonitor/statesAsOfTick()``) and no batch has been written to
///   the store since (``HistoryStore/generation``);
/// - and, whatever was written since, while it is newer than ``costFactor`` times what it took to make, so
///   that at many URLs, where one document takes seconds, making them takes at most 1/``costFactor`` of a
///   core however often `/status` is asked for.
///
/// One document is made at a time: requests that come while it is made wait for it. What is served from
/// it, the page at `/` and the gzipped bodies (``Variant``), is made from it once too (``bytes(of:_:make:)``),
/// and the time that takes counts in the document's cost, so pages and gzip share the same bound.
final class StatusCache: Sendable {
    /// A document, its JSON bytes, and what was made from it so far.
    final class Made: Sendable {
        let document: StatusDocument
        let json: [UInt8]
        fileprivate let variants = Mutex<[Variant: Task<Result<[UInt8], HistoryError>, Never>]>([:])

        init(document: StatusDocument, json: [UInt8]) {
            self.document = document
            self.json = json
        }
    }

    /// What is served from a document besides its JSON.
    enum Variant: Hashable, Sendable {
        /// The page at `/` (HTML, UTF-8).
        case page
        /// The page, gzipped.
        case gzippedPage
        /// The JSON, gzipped.
        case gzippedJSON
    }

    private struct Key: Equatable {
        var script: Int
        var generation: Int
        /// The monitor's ``StateMonitor/tickCount``: a document shows the states of one tick.
        var tick: Int = 0
    }

    private struct Entry {
        var key: Key
        var made: Double
        var task: Task<Result<Made, HistoryError>, Never>
        /// Seconds it took to make, and then to make its variants; nil while it is made.
        var cost: Double?
        /// The document, once made.
        var document: Made?
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
        script: Int, generation: Int, tick: Int = 0, maxAge: Duration,
        make: @escaping @Sendable () async -> Result<Made, HistoryError>
    ) async throws(HistoryError) -> Made {
        let key = Key(script: script, generation: generation, tick: tick)
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
                    if entry?.key == key, entry?.made == now {
                        entry?.cost = cost
                        entry?.document = try? result.get()
                    }
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

    /// `variant` of `made`, made once per document by `make` (requests that come while it is made wait for
    /// it); the seconds `make` takes are added to the document's cost (see ``StatusCache``).
    /// - Throws: ``HistoryError`` from `make`; a failed variant is not kept.
    func bytes(
        of made: Made, _ variant: Variant, make: @escaping @Sendable () async -> Result<[UInt8], HistoryError>
    ) async throws(HistoryError) -> [UInt8] {
        let clock = self.now
        let task = made.variants.withLock { variants in
            if let task = variants[variant] { return task }
            let task = Task { [self] in
                let start = clock()
                let result = await make()
                let cost = max(0, clock() - start)
                self.entry.withLock { entry in
                    if entry?.document === made, let known = entry?.cost { entry?.cost = known + cost }
                }
                return result
            }
            variants[variant] = task
            return task
        }
        let result = await task.value
        if case .failure = result {
            made.variants.withLock { _ = $0.removeValue(forKey: variant) }
        }
        return try result.get()
    }
}
