import FoundationEssentials

/// StatusSeries is what `GET /status/ID` answers: one URL's hour rollups from the `--data` store, for
/// graphs, as JSON (RFC 8259). `ID` is the URL's `id` in `/status` (its row in the store, stable for as long
/// as the store keeps the URL). Times are seconds since the epoch, latencies seconds, uptimes fractions
/// (0…1) of the polls that were not down; an hour without polls is absent, and so is a field that is not
/// known. The shape is documented in docs/SCRIPTING.md ("/status").
public struct StatusSeries: Codable, Sendable {
    public var id: Int64
    public var url: String
    public var name: String
    public var group: String?
    /// `up`, `degraded`, `down`, or `pending` before its first poll since urlpoll started.
    public var state: String
    public var status: String?
    public var since: Double?
    /// When this document was made.
    public var generatedAt: Double
    /// The days the series covers, up to now.
    public var days: Int
    /// The hours with polls, oldest first.
    public var hours: [Hour]

    /// One hour's polls.
    public struct Hour: Codable, Sendable {
        /// The hour's first second.
        public var start: Int64
        public var polls: Int
        /// Polls that were down.
        public var failures: Int
        public var degraded: Int
        public var uptime: Double?
        /// Over the polls that were not down (seconds; quantiles within 2 %).
        public var latencyMean: Double?
        public var latencyP50: Double?
        public var latencyP95: Double?
        public var latencyMax: Double?

        enum CodingKeys: String, CodingKey {
            case start, polls, failures, degraded, uptime
            case latencyMean = "latency_mean"
            case latencyP50 = "latency_p50"
            case latencyP95 = "latency_p95"
            case latencyMax = "latency_max"
        }

        init(_ rollup: Rollup) {
            self.start = rollup.start
            self.polls = rollup.polls
            self.failures = rollup.failures
            self.degraded = rollup.degraded
            self.uptime = rollup.uptime
            let timed = rollup.polls - rollup.failures
            self.latencyMean = timed > 0 ? rollup.latencySum / Double(timed) : nil
            self.latencyP50 = rollup.sketch.quantile(0.5)
            self.latencyP95 = rollup.sketch.quantile(0.95)
            self.latencyMax = timed > 0 ? rollup.latencyMax : nil
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, url, name, group, state, status, since, days, hours
        case generatedAt = "generated_at"
    }

    /// The series of `target`, whose rows have `id`, from its hour rollups and its state now (nil before
    /// its first poll).
    public init(id: Int64, target: Target, state: State?, hours: [Rollup], days: Int, now: Double) {
        self.id = id
        self.url = target.displayURL
        self.name = target.name
        self.group = target.group
        self.state = state?.health.rawValue ?? "pending"
        self.status = state?.status
        self.since = state?.since
        self.generatedAt = now
        self.days = days
        // Hours after now (written before the clock was set back) are not history yet.
        self.hours = hours.filter { Double($0.start) <= now }.map(Hour.init)
    }

    /// The document as JSON bytes, keys sorted.
    public func json() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(self))
    }
}
