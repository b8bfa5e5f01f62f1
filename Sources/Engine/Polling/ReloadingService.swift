import Logging
import ServiceLifecycle

#if canImport(Glibc)
    import CMalloc
#endif

/// ReloadingService runs a PollerPool as a service and swaps it for a new one on each reload request
/// (SIGHUP, or a change of the script with `--watch`).
///
/// The new script is loaded and validated while the old pool keeps polling; if it fails, the old pool simply
/// carries on. On success the old pool stops and the new one starts from the old states: each kept URL keeps
/// its status, error count, poll count and `since`; removed URLs are dropped; every kept URL is polled once
/// right away, then follows its schedule. On graceful shutdown (SIGINT, SIGTERM) or cancellation the pool
/// stops, in-flight requests are cancelled, and the monitor prints a last report (a `report` hook that waits
/// on a request there is abandoned at once).
public struct ReloadingService<C: Clock>: Service where C.Duration == Duration {
    /// Builds the pool for a freshly loaded script, or returns nil when the script is invalid (having said
    /// why).
    public typealias Rebuild = @Sendable () async -> PollerPool<C>?

    /// The first pool, taken when polling starts, so that once a reload replaces it nothing keeps it (its
    /// targets, its monitor's states, its script's Lua state).
    private let initial: Handoff<PollerPool<C>>
    private let resume: [State]
    private let reloads: AsyncStream<Void>
    private let rebuild: Rebuild

    /// - Parameters:
    ///   - pool: The pool to start with.
    ///   - resume: States to start from (from a state file, paired with the pool's URLs by
    ///     ``StateStore/match(_:to:)``), keyed by ``State/rawURL``; URLs the pool does not have are ignored.
    ///   - reloads: One element per reload request.
    ///   - rebuild: Loads the script anew.
    public init(pool: PollerPool<C>, resume: [State] = [], reloads: AsyncStream<Void>, rebuild: @escaping Rebuild) {
        self.initial = Handoff(pool)
        self.resume = resume
        self.reloads = reloads
        self.rebuild = rebuild
    }

    public func run() async {
        guard let last = await cancelWhenGracefulShutdown({ await self.pollAndReload() }) else { return }
        // Print a last report, as a user stopping the program expects to see where things stood. It runs as
        // a cancelled task, for urlpoll is stopping: a `report` hook that waits on `urlpoll.http` is abandoned
        // at once, as every waiting hook is, rather than after its request's timeout. (The rest of the tick,
        // the reporter's printing included, does not wait on anything cancellation ends.)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await last.monitor.tick() }
            group.cancelAll()
        }
    }

    private enum Outcome: Sendable {
        /// The pool stopped: shutdown.
        case stopped
        /// A new script loaded.
        case reload(PollerPool<C>)
        /// Nothing will ask for a reload any more; keep polling.
        case noMoreReloads
    }

    /// Runs pools from the first until cancelled; returns the one running then (nil when already run).
    private func pollAndReload() async -> PollerPool<C>? {
        // Taken here, not passed in: an argument or a captured value would keep the first pool alive for as
        // long as polling goes on.
        guard var pool = self.initial.take() else { return nil }
        var states = self.resume
        var reloaded = false
        while !Task.isCancelled {
            if reloaded { Self.returnFreedMemory() }
            reloaded = true
            await pool.monitor.seed(states)
            // Only the new pool's Resources and monitor keep the previous States now, each until its URL's
            // next poll; nothing here holds them (or the Resources) while the pool runs.
            let resources = Handoff(Self.resources(for: pool.targets, resuming: states))
            states = []
            let current = pool
            let next: PollerPool<C>? = await withTaskGroup(of: Outcome.self) { group in
                group.addTask {
                    await current.run(resuming: resources.take())
                    return .stopped
                }
                group.addTask {
                    for await _ in self.reloads {
                        if let next = await self.rebuild() { return .reload(next) }
                    }
                    return .noMoreReloads
                }
                defer { group.cancelAll() }
                while let outcome = await group.next() {
                    switch outcome {
                    case .stopped: return nil
                    case .reload(let next):
                        current.replacing()
                        return next
                    case .noMoreReloads: continue
                    }
                }
                return nil
            }
            guard let next else { break }
            states = await current.monitor.snapshot()
            pool = next
        }
        return pool
    }

    /// Hands the pages the previous pool freed (its targets, Resources and States, its script's Lua state)
    /// back to the system. glibc keeps freed memory in each thread's arena for reuse, and with the
    /// allocations of a reload spread over several threads' arenas, the resident size grew with every
    /// reload of a same-sized list; `malloc_trim(0)` releases every whole free page in every arena (glibc
    /// 2.8 and later; malloc_trim(3)).
    private static func returnFreedMemory() {
        #if canImport(Glibc)
            _ = malloc_trim(0)
        #endif
    }

    /// A Resource per target, resuming the state of the same URL (as written, ``State/rawURL``) if any.
    private static func resources(for targets: [Target], resuming states: [State]) -> [Resource] {
        let byURL = Dictionary(states.map { ($0.rawURL, $0) }, uniquingKeysWith: { first, _ in first })
        return targets.map { Resource($0, resuming: byURL[$0.url]) }
    }
}
