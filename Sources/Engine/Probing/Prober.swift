/// Prober sends one request for a URL and says what came back. The engine's only door to the network.
public protocol Prober: Sendable {
    /// Polls `target` once. Never throws: every failure is a ``ProbeResult`` with a ``ProbeFailure``.
    func probe(_ target: Target, settings: Settings) async -> ProbeResult
}
