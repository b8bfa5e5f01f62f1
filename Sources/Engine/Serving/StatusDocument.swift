import FoundationEssentials

/// StatusDocument is what `GET /status` answers: every URL's state now and, with `--data`, its uptime and
/// latency summaries, and the latest changes of all URLs, as JSON (RFC 8259). Times are seconds since the
/// epoch, latencies seconds, uptimes fractions (0…1) of the polls that were not down; a field is absent
/// when it is not known (no `--data`, no polls in the window). A URL's series are not in it (they made it
/// ~3 KB per URL, 330 MB at 100,000 URLs): they are at `GET /status/ID`. The shape is documented in
/// docs/SCRIPTING.md ("/status").
public struct StatusDocument: Codable, Sendable {
    /// The `title` setting.
    public var title: String
    /// When this document was made.
    public var generatedAt: Double
    /// Whether uptime, latency and changes come from a `--data` store.
    public var history: Bool
    /// URLs per state: `up`, `degraded`, `down`, `pending` (not polled yet).
    public var counts: [String: Int]
    /// Every URL, in the script's URL order (or one page of them, see ``page(_:perPage:)``).
    public var urls: [Entry]
    /// The latest changes of all URLs together, newest first (at most ``changeCount``); empty without
    /// `--data`.
    public var changes: [Change] = []
    /// How many URLs the script has (``urls`` may be one page of them).
    public var total: Int?
    /// The page ``urls`` is (from 1) and its size, when a page was asked for.
    public var page: Int?
    public var perPage: Int?

    /// One URL.
    public struct Entry: Codable, Sendable {
        /// The URL's id in the `--data` store (``HistoryStore/urlIDs()``): `GET /status/ID` answers its
        /// hour series. Absent without `--data`, and until the URL's first poll is written.
        public var id: Int64?
        public var url: String
        public var name: String
        public var group: String?
        /// `up`, `degraded`, `down`, or `pending` before its first poll.
        public var state: String
        /// `"200 OK"`, or the failure's short kind (`"refused"`).
        public var status: String?
        public var code: Int?
        public var detail: String?
        public var since: Double?
        public var checkedAt: Double?
        /// Failed polls in a row; absent before the first poll, as the other fields of the last poll.
        public var errorCount: Int?
        /// The last poll's latency.
        public var latency: Double?
        /// Shares of polls not down over the last 24 hours (whole hours), and the last 7 and 30 UTC days,
        /// today included.
        public var uptime1d: Double?
        public var uptime7d: Double?
        public var uptime30d: Double?
        /// Latency quantiles over the last 24 hours (polls not down).
        public var latencyP50: Double?
        public var latencyP95: Double?
        /// The last 24 hours, hour by hour, oldest first: for the page, not in the JSON (`GET /status/ID`
        /// has them).
        public var hours: [Bucket] = []
        /// The last ``StatusDocument/dayCount`` days (UTC, today included) with polls, day by day, oldest
        /// first: for the page, not in the JSON.
        public var days: [Bucket] = []

        enum CodingKeys: String, CodingKey {
            case id, url, name, group, state, status, code, detail, since, latency
            case checkedAt = "checked_at"
            case errorCount = "error_count"
            case uptime1d = "uptime_1d"
            case uptime7d = "uptime_7d"
            case uptime30d = "uptime_30d"
            case latencyP50 = "latency_p50"
            case latencyP95 = "latency_p95"
        }
    }

    /// An hour's or a day's polls.
    public struct Bucket: Codable, Sendable {
        public var start: Int64
        public var polls: Int
        public var failures: Int
        public var degraded: Int
        public var uptime: Double?
        public var latencyP95: Double?

        enum CodingKeys: String, CodingKey {
            case start, polls, failures, degraded, uptime
            case latencyP95 = "latency_p95"
        }

        init(_ rollup: Rollup, latency: Bool) {
            self.start = rollup.start
            self.polls = rollup.polls
            self.failures = rollup.failures
            self.degraded = rollup.degraded
            self.uptime = rollup.uptime
            self.latencyP95 = latency ? rollup.sketch.quantile(0.95) : nil
        }
    }

    /// One change of state or status of one URL.
    public struct Change: Codable, Sendable {
        /// The URL's id in the store (as ``Entry/id``), absent when the script no longer lists it.
        public var id: Int64?
        /// The URL as reports show it (credentials redacted), and its name in the script (absent when the
        /// script no longer lists it).
        public var url: String
        public var name: String?
        public var at: Double
        public var from: String?
        public var to: String
        public var fromStatus: String?
        public var toStatus: String
        public var detail: String?

        enum CodingKeys: String, CodingKey {
            case id, url, name, at, from, to, detail
            case fromStatus = "from_status"
            case toStatus = "to_status"
        }
    }

    enum CodingKeys: String, CodingKey {
        case title, history, counts, urls, changes, total, page
        case generatedAt = "generated_at"
        case perPage = "per_page"
    }

    /// The most changes in ``changes``.
    public static let changeCount = 50
    /// The days in ``Entry/days``, today included.
    public static let dayCount = 90

    /// Builds the document from the monitor's states and, when there is one, the history store.
    /// - Parameter changesUpToStates: Leave out changes after the newest of `states` (by `checkedAt`): with
    ///   the states of a tick, a change committed since (before its `on_change`) is not shown beside a row
    ///   that does not have it yet.
    /// - Throws: ``HistoryError`` when the store cannot be read.
    public static func make(
        targets: [Target], states: [String: State], settings: Settings, history: (any HistoryStore)?,
        now: Double = Date().timeIntervalSince1970, changesUpToStates: Bool = false
    ) throws(HistoryError) -> StatusDocument {
        // Keyed by the printed URL and its ordinal (``HistoryKey``): URLs that print alike have each their own.
        var hourly: [HistoryKey: [Rollup]] = [:]
        var daily: [HistoryKey: [Rollup]] = [:]
        var changes: [HistoryChange] = []
        var ids: [HistoryKey: Int64] = [:]
        let today = Int64((now / 86_400).rounded(.down)) * 86_400
        if let history {
            ids = history.urlIDs()
            hourly = try history.hourly(since: now - 86_400)
            daily = try history.daily(since: Double(today - Int64(Self.dayCount - 1) * 86_400))
            if changesUpToStates {
                let newest = states.values.lazy.map(\.checkedAt).max() ?? -Double.infinity
                // A few more than shown, so that leaving out the newest still leaves a full list most times.
                changes = try history.latestChanges(limit: Self.changeCount + 50).filter { $0.at <= newest }
                changes = Array(changes.prefix(Self.changeCount))
            } else {
                changes = try history.latestChanges(limit: Self.changeCount)
            }
        }
        var counts = ["up": 0, "degraded": 0, "down": 0, "pending": 0]
        var entries: [Entry] = []
        entries.reserveCapacity(targets.count)
        for target in targets {
            let url = target.displayURL
            let key = target.historyKey
            // The monitor keys its states by the URL as written (``State/rawURL``), password included.
            let state = states[target.url]
            let stateName = state?.health.rawValue ?? "pending"
            counts[stateName, default: 0] += 1
            // Rollups dated after now (written before the clock was set back) count in no window: the hours
            // are cut at now, and today (whose day rollup may hold such polls) is the sum of its hours so far.
            let hours = (hourly[key] ?? []).filter { Double($0.start) <= now }
            let day = Self.total(hours)
            var days = (daily[key] ?? []).filter { $0.start < today }
            var sofar = Self.total(hours.filter { $0.start >= today })
            sofar.start = today
            if sofar.polls > 0 { days.append(sofar) }
            let week = Self.total(days.filter { $0.start >= today - 6 * 86_400 })
            let month = Self.total(days.filter { $0.start >= today - 29 * 86_400 })
            entries.append(
                Entry(
                    id: ids[key], url: url, name: target.name, group: target.group, state: stateName,
                    status: state?.status,
                    code: state?.code,
                    detail: state.flatMap { ($0.detail ?? $0.error)?.limited(toUTF8Bytes: String.detailLimit) },
                    since: state?.since,
                    checkedAt: state?.checkedAt, errorCount: state?.errorCount,
                    latency: state.map { $0.latency.seconds }, uptime1d: day.uptime,
                    uptime7d: week.uptime, uptime30d: month.uptime,
                    latencyP50: day.sketch.quantile(0.5), latencyP95: day.sketch.quantile(0.95),
                    hours: hours.map { Bucket($0, latency: true) },
                    days: days.map { Bucket($0, latency: false) }))
        }
        var names: [HistoryKey: String] = [:]
        for target in targets { names[target.historyKey] = target.name }
        return StatusDocument(
            title: settings.title, generatedAt: now, history: history != nil, counts: counts, urls: entries,
            changes: changes.map {
                Change(
                    // A URL the script no longer lists has neither: `/status/ID` answers only listed URLs.
                    id: names[$0.key] == nil ? nil : ids[$0.key], url: $0.url, name: names[$0.key], at: $0.at,
                    from: $0.from?.rawValue,
                    to: $0.to.rawValue, fromStatus: $0.fromStatus, toStatus: $0.toStatus,
                    detail: $0.detail?.limited(toUTF8Bytes: String.detailLimit))
            }, total: entries.count)
    }

    /// The URLs of page `page` (from 1) of `perPage` URLs, in the script's order (`GET /status?page=&per_page=`,
    /// as Gatus pages its `/api/v1/endpoints/statuses`); the rest of the document as it is. A page past the
    /// last has no URLs.
    public func page(_ page: Int, perPage: Int) -> StatusDocument {
        var paged = self
        let (skipped, overflow) = max(page - 1, 0).multipliedReportingOverflow(by: max(perPage, 0))
        let first = overflow ? self.urls.count : min(skipped, self.urls.count)
        paged.urls = Array(self.urls[first..<(first + min(max(perPage, 0), self.urls.count - first))])
        paged.page = page
        paged.perPage = perPage
        return paged
    }

    private static func total(_ rollups: [Rollup]) -> Rollup {
        var total = Rollup(start: rollups.first?.start ?? 0)
        for rollup in rollups { total.merge(rollup) }
        return total
    }

    /// The document as JSON bytes, keys sorted.
    public func json() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(self))
    }
}
