import Logging
import ServiceLifecycle

/// ReloadingService runs a PollerPool as a service and swaps it for a new one on each reload request
/// (SIGHUP, or a change of the script with `--watch`).
///
/// The new script is loaded and validated while the old pool keeps polling; if it fails, the old pool simply
/// carries on. On success the old pool stops and the new one starts from the old states: each kept URL keeps
/// its status, error count, poll count and `since`; removed URLs are dropped; every kept URL is polled once
/// right away, then follows its schedule. On graceful shutdown (SIGINT, SIGTERM) or cancellation the pool
/// stops, in-flight requests are cancelled, and the monitor prints a last report.
public struct ReloadingService<C: Clock>: Service where C.Duration == Duration {
    /// Builds the pool for a freshly loaded script, or returns nil when the script is invalid (having said
    /// why).
    public typealias Rebuild = @Sendable () async -> PollerPool<C>?

    private let initial: PollerPool<C>
    private let resume: [State]
    private let reloads: AsyncStream<Void>
    private let rebuild: Rebuild

    /// - Parameters:
    ///   - pool: The pool to start with.
    ///   - resume: States to start from (from a state file); URLs the pool does not have are ignored.
    ///   - reloads: One element per reload request.
    ///   - rebuild: Loads the script anew.
    public init(pool: PollerPool<C>, resume: [State] = [], reloads: AsyncStream<Void>, rebuild: @escaping Rebuild) {
        self.initial = pool
        self.resume = resume
        self.reloads = reloads
        self.rebuild = rebuild
    }

    public func run() async {
        let last = await cancelWhenGracefulShutdown { await self.pollAndReload() }
        // Print a last report, as a user stopping the program expects to see where things stood.
        await last.monitor.tick()
    }

    private enum Outcome: Sendable {
        /// The pool stopped: shutdown.
        case stopped
        /// A new script loaded.
        case reload(PollerPool<C>)
        /// Nothing will ask for a reload any more; keep polling.
        case noMoreReloads
    }

    /// Runs pools until cancelled; returns the one running then.
    private func pollAndReload() async -> PollerPool<C> {
        var pool = self.initial
        var states = self.resume
        while !Task.isCancelled {
            await pool.monitor.seed(states)
            let byURL = Dictionary(states.map { ($0.url, $0) }, uniquingKeysWith: { first, _ in first })
            let resources = pool.targets.map { Resource($0, resuming: byURL[$0.displayURL]) }
            let current = pool
            let next: PollerPool<C>? = await withTaskGroup(of: Outcome.self) { group in
                group.addTask {
                    await current.run(resuming: resources)
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
                    case .reload(let next): return next
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
}
