/// Verdict is what a `check` hook decided about a response.
public struct Verdict: Sendable, Hashable {
    /// Up, degraded or down.
    public var health: Health
    /// The hook's second return value, shown as the State's `detail`.
    public var message: String?

    public init(_ health: Health, message: String? = nil) {
        self.health = health
        self.message = message
    }
}
