/// Health is a URL's verdict after a poll: up, degraded (working, but a `check` is unhappy), or down.
public enum Health: String, Sendable, Hashable, CaseIterable {
    case up
    case degraded
    case down
}
