import NIOCore

/// Prober sends one request for a URL and says what came back. The engine's only door to the network.
public protocol Prober: Sendable {
    /// Polls `target` once. Never throws: every failure is a ``ProbeResult`` with a ``ProbeFailure``.
    func probe(_ target: Target, settings: Settings) async -> ProbeResult

    /// The SwiftNIO event loops the probes' I/O runs on, if any. ``PollerPool`` runs its pollers and their
    /// polls there (each poller on one loop, as its task executor, SE-0417), so a poll's request, its
    /// response and the code around them share a thread instead of crossing from Swift's cooperative pool
    /// to a loop and back. `nil` (the default): the pollers run on the global executor.
    var eventLoops: (any EventLoopGroup)? { get }
}

extension Prober {
    public var eventLoops: (any EventLoopGroup)? { nil }
}
