#if canImport(Glibc)
    import Glibc
#endif

/// DescriptorBudget shares out the file descriptors the process may open (the soft `RLIMIT_NOFILE`,
/// getrlimit(2), read when asked) between the connections of polls in flight and idle kept-alive
/// connections, after a reserve for everything else, so urlpoll does not run itself out of descriptors.
public struct DescriptorBudget: Sendable, Hashable {
    /// The soft limit on open files.
    public var limit: Int

    /// Kept for everything but poll connections: standard streams, the event loops' own descriptors, the
    /// state file, alert deliveries, a script's own files.
    public static let reserved = 64

    public init(limit: Int) {
        self.limit = limit
    }

    /// The soft `RLIMIT_NOFILE` now (`RLIM_INFINITY` counts as a very large number).
    public static var current: DescriptorBudget {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return DescriptorBudget(limit: 1024) }
        return DescriptorBudget(limit: Int(clamping: min(limit.rlim_cur, rlim_t(Int.max / 2))))
    }

    /// Descriptors left for poll connections, in flight or idle (at least 8).
    public var forPolls: Int { max(8, self.limit - Self.reserved) }

    /// Idle kept-alive connections to keep: `wanted`, but at most a quarter of ``forPolls``.
    public func idleConnections(wanted: Int) -> Int {
        max(1, min(wanted, self.forPolls / 4))
    }

    /// Polls in flight: 1,024 (or `pollers` when larger), but at most what the idle connections leave of
    /// ``forPolls``.
    public func pollsInFlight(pollers: Int) -> Int {
        max(1, min(max(1024, pollers), self.forPolls - self.forPolls / 4))
    }
}
