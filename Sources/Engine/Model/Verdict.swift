/// Verdict is what a `check` hook decided about a response.
public struct Verdict: Sendable, Hashable {
    public var health: Health
    public var message: String?

    public init(_ health: Health, message: String? = nil) {
        self.health = health
        self.message = message
    }
}
