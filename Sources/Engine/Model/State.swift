/// State is the last-known state of a URL: what the StateMonitor holds and what `report` and the
/// default reporter see.
public struct State: Sendable, Hashable {
    /// The URL as urlpoll prints and exports it: its password, if any, replaced by `xxxxx`
    /// (``Target/displayURL``). Two URLs that differ only by their password print alike; ``rawURL`` tells
    /// them apart.
    public var url: String {
        get { self.shared.fields.url }
        set {
            // The URL as written and the name default to this one: keep them as they were.
            let (rawURL, name) = (self.rawURL, self.name)
            self.shared.fields.url = newValue
            self.rawURL = rawURL
            self.name = name
        }
    }

    /// The URL exactly as the script wrote it, password included: the monitor's key, unique per URL (the
    /// loader refuses duplicates). Never printed or exported; hooks read it as `raw_url`.
    public var rawURL: String {
        get { self.shared.fields.rare?.fields.rawURL ?? self.shared.fields.url }
        set {
            let differing = newValue == self.url ? nil : newValue
            self.updateRare { $0.rawURL = differing }
        }
    }

    /// The display label: the URL's `name`, or the URL.
    public var name: String {
        get { self.shared.fields.rare?.fields.name ?? self.shared.fields.url }
        set {
            let differing = newValue == self.url ? nil : newValue
            self.updateRare { $0.name = differing }
        }
    }

    /// The URL's number among URLs that print alike (``Target/ordinal``; 1 for most URLs).
    public var ordinal: Int {
        get { Int(self.shared.fields.ordinal) }
        set { self.shared.fields.ordinal = UInt32(clamping: newValue) }
    }

    /// The key of this URL's rows in the `--data` store: ``url`` and ``ordinal``, never the password.
    public var historyKey: HistoryKey { HistoryKey(url: self.url, ordinal: self.ordinal) }

    /// `"200 OK"` for a response, or the failure's short kind (`"refused"`, `"timeout"`, ...).
    public var status: String {
        get { self.shared.fields.status }
        set { self.shared.fields.status = newValue }
    }

    /// The HTTP status code, when there was a response (RFC 9110, section 15: three digits).
    public var code: Int? {
        get { self.shared.fields.code == Fields.noCode ? nil : Int(self.shared.fields.code) }
        set {
            self.shared.fields.code =
                newValue.map { Int32(clamping: $0) == Fields.noCode ? Fields.noCode + 1 : Int32(clamping: $0) }
                ?? Fields.noCode
        }
    }

    /// Up, degraded or down: from `expect`, or from the `check` hook when there is one.
    public var health: Health {
        get { self.shared.fields.health }
        set { self.shared.fields.health = newValue }
    }

    /// A short error kind when the poll failed or was degraded (`"status"` for a code outside `expect`,
    /// `"check"` when the `check` hook said so).
    public var error: String? {
        get { self.shared.fields.rare?.fields.error }
        set { self.updateRare { $0.error = newValue } }
    }

    /// The full error text when the poll failed.
    public var detail: String? {
        get { self.shared.fields.rare?.fields.detail }
        set { self.updateRare { $0.detail = newValue } }
    }

    /// Consecutive failed polls, 0 after a success.
    public var errorCount: Int {
        get { Int(self.shared.fields.errorCount) }
        set { self.shared.fields.errorCount = UInt32(clamping: newValue) }
    }

    /// How long the poll took: from sending the request to the end of the response, or to the failure.
    /// Kept to the nanosecond.
    public var latency: Duration {
        get { .nanoseconds(self.shared.fields.latency) }
        set { self.shared.fields.latency = newValue.nanosecondsClamped }
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
    /// and not counted. Kept to the nanosecond.
    public var lateness: Duration {
        get { .nanoseconds(self.shared.fields.lateness) }
        set { self.shared.fields.lateness = newValue.nanosecondsClamped }
    }

    /// The certificate the last poll saw (`tls://`), for reports and metrics
    /// (`probe_ssl_earliest_cert_expiry`), or `nil`.
    public var tls: TLSFacts? {
        get { self.shared.fields.rare?.fields.tls }
        set { self.updateRare { $0.tls = newValue } }
    }

    /// The last poll's DNS response (`dns://`), for reports and metrics (`probe_dns_answer_rrs`), or `nil`.
    public var dns: DNSFacts? {
        get { self.shared.fields.rare?.fields.dns }
        set { self.updateRare { $0.dns = newValue } }
    }

    /// The last HTTP poll's per-phase times (``PhaseTimings``), or `nil`. Kept to the nanosecond.
    public var timings: PhaseTimings? {
        get { self.shared.fields.timings.map(\.timings) }
        set { self.shared.fields.timings = newValue.map(CompactTimings.init) }
    }

    /// The last HTTP poll's exchange facts (``HTTPFacts``), or `nil`.
    public var http: HTTPFacts? {
        get { self.shared.fields.http.map(\.facts) }
        set { self.shared.fields.http = newValue.map(CompactHTTPFacts.init) }
    }

    /// Whether this State is a change's state read back from the `--data` store at a start, for an
    /// `on_change` hook that never started before urlpoll was killed (`s.replayed` in Lua;
    /// ``SQLiteHistoryStore/takeUnstartedChanges(since:limit:)``); false for every polled State.
    public var replayed: Bool {
        get { self.shared.fields.rare?.fields.replayed ?? false }
        set { self.updateRare { $0.replayed = newValue } }
    }

    /// A State is copied into the monitor's map, its Resource and every report; its fields sit behind one
    /// reference so that 100,000 URLs' states take one copy each, and a copy costs one retain.
    ///
    /// What every poll sets is kept compact (durations as Int64 nanoseconds, counts as UInt32); what few
    /// States have (an error, a name or a URL as written other than ``url``, TLS and DNS facts) is in one
    /// optional box, ``Rare``: an HTTP poll's State is a 192-byte heap block, where every field inline took about
    /// 510 bytes (StateTests).
    fileprivate struct Fields: Sendable, Hashable {
        static let noCode = Int32.min
        // In this order, the small fields fill the padding after `timings` (168 bytes in all).
        var url: String
        var status: String
        var since: Double
        var checkedAt: Double
        var latency: Int64
        var lateness: Int64
        var timings: CompactTimings?
        var health: Health
        var code: Int32
        var ordinal: UInt32
        var errorCount: UInt32
        var polls: Int
        var http: CompactHTTPFacts?
        var rare: Shared<Rare>?
    }

    /// The fields few States have; `nil` each when absent, and the box itself `nil` when all are.
    fileprivate struct Rare: Sendable, Hashable {
        /// The URL as written, when it differs from ``State/url`` (a password).
        var rawURL: String?
        /// The name, when it differs from ``State/url``.
        var name: String?
        var error: String?
        var detail: String?
        var tls: TLSFacts?
        var dns: DNSFacts?
        var replayed = false

        var isEmpty: Bool {
            self.rawURL == nil && self.name == nil && self.error == nil && self.detail == nil && self.tls == nil
                && self.dns == nil && !self.replayed
        }
    }

    private var shared: Shared<Fields>

    /// Changes the rare fields, making their box when a field is set and dropping it when none is left.
    private mutating func updateRare(_ change: (inout Rare) -> Void) {
        if self.shared.fields.rare == nil {
            var rare = Rare()
            change(&rare)
            if !rare.isEmpty { self.shared.fields.rare = Shared(rare) }
            return
        }
        change(&self.shared.fields.rare!.fields)
        if self.shared.fields.rare!.fields.isEmpty { self.shared.fields.rare = nil }
    }

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
                url: url, status: status, since: since, checkedAt: checkedAt, latency: latency.nanosecondsClamped,
                lateness: lateness.nanosecondsClamped, timings: nil, health: health, code: Fields.noCode,
                ordinal: UInt32(clamping: ordinal), errorCount: UInt32(clamping: errorCount), polls: polls, http: nil,
                rare: nil))
        self.code = code
        self.rawURL = rawURL ?? url
        self.name = name
        self.error = error
        self.detail = detail
    }

    /// Whether the URL is not down (up or degraded).
    public var ok: Bool { self.health != .down }

    /// Whether `other` is a different status or health, the kind of difference `on_change` is called for.
    public func differs(from other: State?) -> Bool {
        guard let other else { return true }
        return self.status != other.status || self.health != other.health
    }
}

/// PhaseTimings as five Int64 nanoseconds (40 bytes where five `Duration`s take 80).
private struct CompactTimings: Sendable, Hashable {
    var resolve, connect, tls, processing, transfer: Int64

    init(_ timings: PhaseTimings) {
        self.resolve = timings.resolve.nanosecondsClamped
        self.connect = timings.connect.nanosecondsClamped
        self.tls = timings.tls.nanosecondsClamped
        self.processing = timings.processing.nanosecondsClamped
        self.transfer = timings.transfer.nanosecondsClamped
    }

    var timings: PhaseTimings {
        PhaseTimings(
            resolve: .nanoseconds(self.resolve), connect: .nanoseconds(self.connect), tls: .nanoseconds(self.tls),
            processing: .nanoseconds(self.processing), transfer: .nanoseconds(self.transfer))
    }
}

/// HTTPFacts in 32 bytes: absent lengths and protocols as sentinels instead of optionals' padding.
private struct CompactHTTPFacts: Sendable, Hashable {
    static let none = Int64.min
    var version: Double
    var contentLength: Int64
    var bodyLength: Int64
    var redirects: Int32
    var ipProtocol: Int16
    var ssl: Bool

    init(_ facts: HTTPFacts) {
        self.version = facts.version
        self.contentLength =
            facts.contentLength.map { Int64(clamping: $0) == Self.none ? Self.none + 1 : Int64($0) }
            ?? Self.none
        self.bodyLength = Int64(clamping: facts.bodyLength)
        self.redirects = Int32(clamping: facts.redirects)
        self.ipProtocol = facts.ipProtocol.map { Int16(clamping: $0) == -1 ? 0 : Int16(clamping: $0) } ?? -1
        self.ssl = facts.ssl
    }

    var facts: HTTPFacts {
        HTTPFacts(
            version: self.version, contentLength: self.contentLength == Self.none ? nil : Int(self.contentLength),
            bodyLength: Int(self.bodyLength), redirects: Int(self.redirects), ssl: self.ssl,
            ipProtocol: self.ipProtocol == -1 ? nil : Int(self.ipProtocol))
    }
}

extension Duration {
    /// This duration in whole nanoseconds, rounded toward zero and clamped to Int64's range (about 292 years).
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = self.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (total, overflow2) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return total
    }
}
