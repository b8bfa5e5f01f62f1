/// State is the last-known state of a URL: what the StateMonitor holds and what `report` and the
/// default reporter see.
public struct State: Sendable, Hashable {
    /// The URL as urlpoll prints and exports it: its password, if any, replaced by `xxxxx`
    /// (``Target/displayURL``). Two URLs that differ only by their password print alike; ``rawURL`` tells
    /// them apart.
    public var url: String {
        get { self.shared.fields.url }
        set { self.shared.fields.url = newValue }
    }

    /// The URL exactly as the script wrote it, password included: the monitor's key, unique per URL (the
    /// loader refuses duplicates). Never printed or exported; hooks read it as `raw_url`.
    public var rawURL: String {
        get { self.shared.fields.rawURL }
        set { self.shared.fields.rawURL = newValue }
    }

    /// The display label: the URL's `name`, or the URL.
    public var name: String {
        get { self.shared.fields.name }
        set { self.shared.fields.name = newValue }
    }

    /// The URL's number among URLs that print alike (``Target/ordinal``; 1 for most URLs).
    public var ordinal: Int {
        get { self.shared.fields.ordinal }
        set { self.shared.fields.ordinal = newValue }
    }

    /// The key of this URL's rows in the `--data` store: ``url`` and ``ordinal``, never the password.
    public var historyKey: HistoryKey { HistoryKey(url: self.url, ordinal: self.ordinal) }

    /// `"200 OK"` for a response, or the failure's short kind (`"refused"`, `"timeout"`, ...).
    public var status: String {
        get { self.shared.fields.status }
        set { self.shared.fields.status = newValue }
    }

    /// The HTTP status code, when there was a response.
    public var code: Int? {
        get { self.shared.fields.code }
        set { self.shared.fields.code = newValue }
    }

    /// Up, degraded or down: from `expect`, or from the `check` hook when there is one.
    public var health: Health {
        get { self.shared.fields.health }
        set { self.shared.fields.health = newValue }
    }

    /// A short error kind when the poll failed or was degraded (`"status"` for a code outside `expect`,
    /// `"check"` when the `check` hook said so).
    public var error: String? {
        get { self.shared.fields.error }
        set { self.shared.fields.error = newValue }
    }

    /// The full error text when the poll failed.
    public var detail: String? {
        get { self.shared.fields.detail }
        set { self.shared.fields.detail = newValue }
    }

    /// Consecutive failed polls, 0 after a success.
    public var errorCount: Int {
        get { self.shared.fields.errorCount }
        set { self.shared.fields.errorCount = newValue }
    }

    /// How long the poll took: from sending the request to the end of the response, or to the failure.
    public var latency: Duration {
        get { self.shared.fields.latency }
        set { self.shared.fields.latency = newValue }
    }

    /// Polls of this URL so far.
    public var polls: Int {
        get { self.shared.fields.polls }
        set { self.shared.fields.polls = newValue }
    }

    /// When the current status began (seconds since the epoch).
    public var since: Double {
        get { self.shared.fields.since }
        set { self.shared.fields.since = newValue }
    }

    /// When this poll finished (seconds since the epoch).
    public var checkedAt: Double {
        get { self.shared.fields.checkedAt }
        set { self.shared.fields.checkedAt = newValue }
    }

    /// How long after its planned time this poll got a poller and a slot for polls in flight: above zero
    /// when the engine cannot keep up (too few pollers, a saturated machine), never a sign that the target
    /// failed. A wait behind its own origin's earlier polls (the per-origin in-flight limit) is the server's,
    /// and not counted.
    public var lateness: Duration {
        get { self.shared.fields.lateness }
        set { self.shared.fields.lateness = newValue }
    }

    /// The certificate the last poll saw (`tls://`), for reports and metrics
    /// (`probe_ssl_earliest_cert_expiry`), or `nil`.
    public var tls: TLSFacts? {
        get { self.shared.fields.tls }
        set { self.shared.fields.tls = newValue }
    }

    /// The last poll's DNS response (`dns://`), for reports and metrics (`probe_dns_answer_rrs`), or `nil`.
    public var dns: DNSFacts? {
        get { self.shared.fields.dns }
        set { self.shared.fields.dns = newValue }
    }

    /// The last HTTP poll's per-phase times (``PhaseTimings``), or `nil`.
    public var timings: PhaseTimings? {
        get { self.shared.fields.timings }
        set { self.shared.fields.timings = newValue }
    }

    /// The last HTTP poll's exchange facts (``HTTPFacts``), or `nil`.
    public var http: HTTPFacts? {
        get { self.shared.fields.http }
        set { self.shared.fields.http = newValue }
    }

    /// A State is copied into the monitor's map, its Resource and every report; its fields sit behind one
    /// reference so that 100,000 URLs' states take one copy each, and a copy costs one retain.
    fileprivate struct Fields: Sendable, Hashable {
        var url: String
        var rawURL: String
        var name: String
        var ordinal: Int
        var status: String
        var code: Int?
        var health: Health
        var error: String?
        var detail: String?
        var errorCount: Int
        var latency: Duration
        var polls: Int
        var since: Double
        var checkedAt: Double
        var lateness: Duration
        var tls: TLSFacts?
        var dns: DNSFacts?
        var timings: PhaseTimings?
        var http: HTTPFacts?
    }

    private var shared: Shared<Fields>

    /// Whether `other` is a copy of this State not changed since: the same fields behind the same reference,
    /// told without comparing them (a URL not polled between two reports).
    func isIdentical(to other: State) -> Bool {
        self.shared.isIdentical(to: other.shared)
    }

    /// - Parameters:
    ///   - rawURL: The URL as the script wrote it, when it differs from `url` (a password); `url` when nil.
    ///   - ordinal: Its number among URLs that print alike (``Target/ordinal``).
    public init(
        url: String, rawURL: String? = nil, name: String, ordinal: Int = 1, status: String, code: Int? = nil,
        health: Health,
        error: String? = nil,
        detail: String? = nil, errorCount: Int = 0, latency: Duration = .zero, polls: Int = 1,
        since: Double = 0, checkedAt: Double = 0, lateness: Duration = .zero
    ) {
        self.shared = Shared(
            Fields(
                url: url, rawURL: rawURL ?? url, name: name, ordinal: ordinal, status: status, code: code,
                health: health, error: error,
                detail: detail,
                errorCount: errorCount, latency: latency, polls: polls, since: since, checkedAt: checkedAt,
                lateness: lateness))
    }

    /// Whether the URL is not down (up or degraded).
    public var ok: Bool { self.health != .down }

    /// Whether `other` is a different status or health, the kind of difference `on_change` is called for.
    public func differs(from other: State?) -> Bool {
        guard let other else { return true }
        return self.status != other.status || self.health != other.health
    }
}
