/// State is the last-known state of a URL: what the StateMonitor holds and what `report` and the
/// default reporter see.
public struct State: Sendable, Hashable {
    public var url: String
    public var name: String
    /// `"200 OK"` for a response, or the failure's short kind (`"refused"`, `"timeout"`, ...).
    public var status: String
    /// The HTTP status code, when there was a response.
    public var code: Int?
    /// Whether the poll succeeded: a response whose code is in the URL's `expect`.
    public var ok: Bool
    /// A short error kind when the poll failed (`"status"` for a code outside `expect`).
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

    public init(
        url: String, name: String, status: String, code: Int? = nil, ok: Bool, error: String? = nil,
        detail: String? = nil, errorCount: Int = 0, latency: Duration = .zero, polls: Int = 1,
        since: Double = 0, checkedAt: Double = 0
    ) {
        self.url = url
        self.name = name
        self.status = status
        self.code = code
        self.ok = ok
        self.error = error
        self.detail = detail
        self.errorCount = errorCount
        self.latency = latency
        self.polls = polls
        self.since = since
        self.checkedAt = checkedAt
    }
}
