/// Health is a URL's verdict after a poll: up, degraded (working, but a `check` is unhappy), or down.
public enum Health: String, Sendable, Hashable, CaseIterable {
    case up
    case degraded
    case down
}

/// Verdict is what a `check` hook decided about a response.
public struct Verdict: Sendable, Hashable {
    public var health: Health
    public var message: String?

    public init(_ health: Health, message: String? = nil) {
        self.health = health
        self.message = message
    }
}

/// State is the last-known state of a URL: what the StateMonitor holds and what `report` and the
/// default reporter see.
public struct State: Sendable, Hashable {
    public var url: String
    public var name: String
    /// `"200 OK"` for a response, or the failure's short kind (`"refused"`, `"timeout"`, ...).
    public var status: String
    /// The HTTP status code, when there was a response.
    public var code: Int?
    /// Up, degraded or down: from `expect`, or from the `check` hook when there is one.
    public var health: Health
    /// A short error kind when the poll failed or was degraded (`"status"` for a code outside `expect`,
    /// `"check"` when the `check` hook said so).
    public var error: String?
    /// The full error text when the poll failed.
    public var detail: String?
    /// Consecutive failed polls, 0 after a success.
    public var errorCount: Int
    public var latency: Duration
    /// Polls of this URL so far.
    public var polls: Int
    /// When the current status began (seconds since the epoch).
    public var since: Double
    /// When this poll finished (seconds since the epoch).
    public var checkedAt: Double
    /// How long after its planned time this poll started: above zero when the engine cannot keep up
    /// (too few pollers, a saturated machine), never a sign that the target failed.
    public var lateness: Duration

    public init(
        url: String, name: String, status: String, code: Int? = nil, health: Health, error: String? = nil,
        detail: String? = nil, errorCount: Int = 0, latency: Duration = .zero, polls: Int = 1,
        since: Double = 0, checkedAt: Double = 0, lateness: Duration = .zero
    ) {
        self.url = url
        self.name = name
        self.status = status
        self.code = code
        self.health = health
        self.error = error
        self.detail = detail
        self.errorCount = errorCount
        self.latency = latency
        self.polls = polls
        self.since = since
        self.checkedAt = checkedAt
        self.lateness = lateness
    }

    /// Whether the URL is not down (up or degraded).
    public var ok: Bool { self.health != .down }

    /// Whether `other` is a different status or health, the kind of difference `on_change` is called for.
    public func differs(from other: State?) -> Bool {
        guard let other else { return true }
        return self.status != other.status || self.health != other.health
    }
}
