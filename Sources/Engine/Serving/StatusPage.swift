import FoundationEssentials
import Hummingbird
import Mustache
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// StatusPage is the page `GET /` serves: one HTML document rendered on the server from the same
/// ``StatusDocument`` as `/status`, with swift-mustache (the Mustache spec, <https://mustache.github.io>;
/// the template is `StatusPage.mustache`, compiled into the binary). It shows the banner (URLs per state),
/// the URLs by `group` with their state, uptime over 24 h / 7 d / 30 d, a bar of daily uptime over the last
/// ``StatusDocument/dayCount`` days and a 24-hour latency line (both inline SVG), and the latest changes;
/// each URL's check message or error is in its row; it reloads itself (`<meta http-equiv="refresh">`, every ``refreshSeconds`` seconds).
///
/// No JavaScript, no CDN, no font or image from elsewhere: it works offline, and its
/// Content-Security-Policy (`default-src 'none'; style-src 'unsafe-inline'`) allows nothing else. Every
/// value is HTML-escaped by Mustache's `{{ }}` (`<`, `>`, `&`, `"`, `'`), so a URL or a name cannot inject
/// markup. Above ``urlLimit`` URLs the page lists the ones not up first and says how many up URLs it leaves
/// out (`/status` lists every one). Times are UTC.
public enum StatusPage {
    /// Seconds between the page's reloads.
    public static let refreshSeconds = 30
    /// The most URLs the page lists.
    public static let urlLimit = 500
    /// The most changes in the page's list of latest changes.
    public static let incidentLimit = 50
    /// The heading of the URLs without a `group`; a group of this name is listed in the same section.
    public static let otherGroup = "Other"

    /// The parsed template. It is part of the binary, so a template that does not parse is a bug that every
    /// test of the page shows at once.
    static let template: MustacheTemplate = {
        let text = String(decoding: PackageResources.StatusPage_mustache, as: UTF8.self)
        do {
            return try MustacheTemplate(string: text)
        } catch {
            preconditionFailure("StatusPage.mustache does not parse: \(error)")
        }
    }()

    static let headers: HTTPFields = [
        .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
        .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'",
    ]

    /// The page for `document`, as HTML (UTF-8).
    public static func html(_ document: StatusDocument) -> String {
        Self.printable(Self.template.render(Page(document)))
    }

    /// `html` with every control character HTML does not allow in text (U+0000–U+001F but tab, line feed and
    /// carriage return; U+007F–U+009F: WHATWG HTML §13.1.4, "control characters") replaced by U+FFFD, so a
    /// NUL or an ESC in a title, name, group or check message never reaches the page raw.
    static func printable(_ html: String) -> String {
        func banned(_ c: Unicode.Scalar) -> Bool {
            (c.value < 0x20 && c != "\t" && c != "\n" && c != "\r") || (0x7F...0x9F).contains(c.value)
        }
        guard html.unicodeScalars.contains(where: banned) else { return html }
        var out = String.UnicodeScalarView()
        for c in html.unicodeScalars { out.append(banned(c) ? "\u{FFFD}" : c) }
        return String(out)
    }

    static func response(_ document: StatusDocument) -> Response {
        Response(status: .ok, headers: Self.headers, body: .init(byteBuffer: ByteBuffer(string: Self.html(document))))
    }

    // MARK: What the template reads (Mustache reads these by their property names)

    struct Page {
        var title: String
        var refresh = StatusPage.refreshSeconds
        var counts: [Count] = []
        var attention: Attention?
        var groups: [Group] = []
        var hidden: String?
        var incidents: [Incident] = []
        var noIncidents: String
        var updated: String

        init(_ document: StatusDocument) {
            self.title = document.title
            self.updated = StatusPage.time(document.generatedAt)
            self.noIncidents =
                document.history ? "No changes yet." : "Changes are kept when urlpoll runs with --data."
            for state in ["up", "degraded", "down", "pending"] {
                if let n = document.counts[state], n > 0 {
                    let problem = state == "down" || state == "degraded"
                    self.counts.append(Count(state: state, count: n, link: problem ? "#attention" : nil))
                }
            }
            // Above the limit, the URLs not up come first; the order within the page stays the script's.
            var shown = document.urls.indices.filter { document.urls[$0].state != "up" }
            shown = Array(shown.prefix(StatusPage.urlLimit))
            let upRoom = StatusPage.urlLimit - shown.count
            shown += document.urls.indices.filter { document.urls[$0].state == "up" }.prefix(upRoom)
            shown.sort()
            if shown.count < document.urls.count {
                let left = document.urls.count - shown.count
                self.hidden =
                    "\(left) more URL\(left == 1 ? " is" : "s are") up and not listed here (the page lists at most \(StatusPage.urlLimit), those not up first); /status lists every one."
            }
            let anchors = Set(shown)
            // Every URL down or degraded now, from the monitor's states (not from the changes, which newer
            // changes of other URLs push out of the latest ones): "Needs attention", above everything else.
            let problems = document.urls.indices.filter {
                document.urls[$0].state == "down" || document.urls[$0].state == "degraded"
            }
            if !problems.isEmpty {
                let listed = problems.prefix(StatusPage.urlLimit)
                let left = problems.count - listed.count
                self.attention = Attention(
                    urls: listed.map { index in
                        Problem(
                            document.urls[index], anchor: anchors.contains(index) ? "u\(index)" : nil,
                            now: document.generatedAt)
                    },
                    more: left > 0
                        ? "\(left) more URL\(left == 1 ? " is" : "s are") down or degraded; /status lists every one."
                        : nil)
            }
            // One section per group, in name order, then the URLs without a group ("Other", which a group of
            // that name joins rather than being a second section of the same title).
            var byGroup: [String: [URLRow]] = [:]
            for index in shown {
                let entry = document.urls[index]
                byGroup[entry.group ?? "", default: []].append(
                    URLRow(entry, index: index, now: document.generatedAt, history: document.history))
            }
            let named = byGroup.removeValue(forKey: StatusPage.otherGroup)
            if let named {
                byGroup["", default: []].append(contentsOf: named)
                byGroup[""]?.sort { $0.index < $1.index }
            }
            let names = byGroup.keys.sorted { a, b in a.isEmpty != b.isEmpty ? !a.isEmpty : a < b }
            for name in names {
                let titled = names.count > 1 || named != nil
                let heading: String? = name.isEmpty ? (titled ? StatusPage.otherGroup : nil) : name
                self.groups.append(Group(name: name, heading: heading, urls: byGroup[name] ?? []))
            }
            // The latest changes of all URLs, newest first; a change lasted until the URL's next one, which
            // is newer, so also in the list. A URL's first result when it is up is no incident (the store
            // leaves it out; this leaves out one a store of another kind gave).
            var next: [String: Double] = [:]
            var ids: [Int64: Int] = [:]
            for index in shown { if let id = document.urls[index].id { ids[id] = index } }
            for change in document.changes.prefix(StatusPage.incidentLimit) {
                let key = "\(change.id ?? -1) \(change.url)"
                defer { next[key] = change.at }
                if change.from == nil && change.to == "up" { continue }
                self.incidents.append(
                    Incident(
                        change, until: next[key], now: document.generatedAt,
                        anchor: change.id.flatMap { ids[$0] }.map { "u\($0)" }))
            }
        }
    }

    /// The URLs that are down or degraded now, with a link to each one's row.
    struct Attention {
        var urls: [Problem]
        var more: String?
    }

    /// A URL down or degraded now: how long for, and why.
    struct Problem {
        var anchor: String?
        var name: String
        var state: String
        var status: String?
        var since: String?
        var detail: String?

        init(_ entry: StatusDocument.Entry, anchor: String?, now: Double) {
            self.anchor = anchor
            self.name = entry.name
            self.state = entry.state
            self.status = entry.status
            self.since = entry.since.map {
                "since \(StatusPage.time($0)) (for \(StatusPage.span(now - $0)))"
            }
            self.detail = entry.detail
        }
    }

    struct Count {
        var state: String
        var count: Int
        var link: String?
    }

    struct Group {
        var name: String
        var heading: String?
        var urls: [URLRow]
    }

    struct URLRow {
        /// The URL's place in the script (from 0), and its row's `id` on the page (`u` and that number).
        var index: Int
        var anchor: String
        var url: String
        var name: String
        var target: String?
        var state: String
        var numbers: String
        /// What the check said (`status 500 is not in expect 200-399`), or the error.
        var detail: String?
        var history: Bool
        var dayCount = StatusDocument.dayCount
        var daysWidth = StatusDocument.dayCount * 5
        var days: [Bar] = []
        /// The latency line's SVG path (``latencyLine(_:)``), nil when no two consecutive hours have latency.
        var line: String?
        var dots: [Point] = []
        var latencyTitle = "latency p95 per hour, last 24 hours: no polls"

        init(_ entry: StatusDocument.Entry, index: Int, now: Double, history: Bool) {
            self.index = index
            self.anchor = "u\(index)"
            self.url = entry.url
            self.name = entry.name
            self.target = entry.name == entry.url ? nil : entry.url
            self.state = entry.state
            self.detail = entry.detail
            self.history = history
            var numbers: [String] = []
            if let status = entry.status { numbers.append(status) }
            if let since = entry.since {
                numbers.append("since \(StatusPage.time(since)) (\(StatusPage.span(now - since)))")
            }
            if history {
                numbers.append(
                    "uptime 24 h \(StatusPage.percent(entry.uptime1d)), 7 d \(StatusPage.percent(entry.uptime7d)), 30 d \(StatusPage.percent(entry.uptime30d))"
                )
                numbers.append("p95 \(StatusPage.milliseconds(entry.latencyP95))")
            } else if let latency = entry.latency {
                numbers.append("latency \(StatusPage.milliseconds(latency))")
            }
            self.numbers = numbers.joined(separator: " · ")
            guard history else { return }
            self.days = Self.bars(entry.days, now: now)
            self.plot(entry.hours)
        }

        /// One bar per day with polls, oldest first, coloured by the day's uptime. A day without polls has no
        /// bar: the grey stripes of the bar's background (`.days` in the template) show through, so a new URL
        /// costs one `<rect>`, not ``StatusDocument/dayCount``.
        static func bars(_ days: [StatusDocument.Bucket], now: Double) -> [Bar] {
            let byStart = Dictionary(days.map { ($0.start, $0) }, uniquingKeysWith: { a, _ in a })
            let today = Int64((now / 86_400).rounded(.down)) * 86_400
            let count = StatusDocument.dayCount
            return (0..<count).compactMap { i in
                let start = today - Int64(count - 1 - i) * 86_400
                guard let day = byStart[start], day.polls > 0, let uptime = day.uptime else { return nil }
                let date = StatusPage.date(Double(start))
                // A day of degraded polls is not green: they count as up (uptime is the share not down), but
                // the bar is there to show what went wrong.
                let cls =
                    uptime < 0.95 ? "bar-down" : uptime < 0.999 || day.degraded > 0 ? "bar-degraded" : "bar-up"
                let degraded = day.degraded > 0 ? ", \(day.degraded) of \(day.polls) degraded" : ""
                return Bar(
                    x: i * 5, cls: cls,
                    title:
                        "\(date): \(StatusPage.percent(uptime)) up, \(day.polls == 1 ? "1 poll" : "\(day.polls) polls")\(degraded)"
                )
            }
        }

        /// The hours' p95 latency as a line 192 × 24 wide (8 per hour, newest on the right).
        mutating func plot(_ hours: [StatusDocument.Bucket]) {
            guard let plotted = Self.latencyLine(hours) else { return }
            self.line = plotted.path
            self.dots = plotted.dots
            self.latencyTitle = "latency p95 per hour, last 24 hours: up to \(StatusPage.milliseconds(plotted.max))"
        }

        /// The hours' p95 latency (seconds) as an SVG path 192 × 24 wide, 8 per hour, newest on the right, the
        /// tallest at the top: one segment (`M x,y L x,y …`) per run of consecutive hours with latency, so an
        /// hour without polls (or with only failures) breaks the line instead of being drawn across; an hour
        /// alone between two gaps is a dot. Nil when no hour has a latency.
        static func latencyLine(_ hours: [StatusDocument.Bucket]) -> (path: String?, dots: [Point], max: Double)? {
            let points = hours.compactMap { h in h.latencyP95.map { (start: h.start, p95: $0) } }
            guard let last = hours.last?.start, let max = points.map(\.p95).max() else { return nil }
            let top = max > 0 ? max : 1
            var runs: [[(x: Double, y: Double)]] = []
            var previous: Int64?
            for p in points {
                let xy = (x: 188 - Double(last - p.start) / 3_600 * 8, y: 22 - p.p95 / top * 20)
                if let previous, p.start - previous == 3_600 {
                    runs[runs.count - 1].append(xy)
                } else {
                    runs.append([xy])
                }
                previous = p.start
            }
            func point(_ xy: (x: Double, y: Double)) -> String {
                "\(StatusPage.decimal(xy.x)),\(StatusPage.decimal(xy.y))"
            }
            let segments = runs.filter { $0.count > 1 }.map { run in
                "M\(point(run[0])) L" + run.dropFirst().map(point).joined(separator: " ")
            }
            let dots = runs.filter { $0.count == 1 }.map {
                Point(x: StatusPage.decimal($0[0].x), y: StatusPage.decimal($0[0].y))
            }
            return (segments.isEmpty ? nil : segments.joined(separator: " "), dots, max)
        }
    }

    struct Bar {
        var x: Int
        var cls: String
        var title: String
    }

    struct Point {
        var x: String
        var y: String
    }

    /// One line of "Latest changes". The name, the status and the detail come from the script or from the
    /// server, so the template isolates each (`<bdi>`, HTML §4.5.24): a right-to-left override in a name
    /// cannot turn the rest of the line around.
    struct Incident {
        var url: String
        var name: String
        var to: String
        var at: Double
        var when: String
        /// `up → down`, or `down` for a first result.
        var change: String
        var status: String
        var detail: String?
        /// `lasted 4 h 39 min`, `for 12 min so far`, or `until the URL was removed from the script`.
        var span: String
        /// The URL's row on the page (`u7`), when the page lists it.
        var anchor: String?

        init(_ change: StatusDocument.Change, until next: Double?, now: Double, anchor: String? = nil) {
            self.url = change.url
            self.name = change.name ?? change.url
            self.to = change.to
            self.at = change.at
            self.when = StatusPage.time(change.at)
            self.change = (change.from.map { "\($0) → " } ?? "") + change.to
            self.status = change.toStatus
            self.detail = change.detail
            self.anchor = anchor
            if let next {
                self.span = "lasted \(StatusPage.span(next - change.at))"
            } else if change.name == nil {
                // The script no longer lists the URL: nothing polls it, so nothing is "so far".
                self.span = "until the URL was removed from the script"
            } else {
                self.span = "for \(StatusPage.span(now - change.at)) so far"
            }
        }
    }

    // MARK: Numbers and times in words

    /// `99.95 %`; whole percents at 100 % and 0 %; `–` when not known.
    static func percent(_ share: Double?) -> String {
        guard let share else { return "–" }
        if share == 1 || share == 0 { return Self.fixed(share * 100, digits: 0) + " %" }
        // Only an exact 1 is 100 %: one failure in 100,000 polls is not (nor is one success 0 %).
        let text = Self.fixed(share * 100, digits: 2)
        if text == "100.00" { return ">99.99 %" }
        if text == "0.00" { return "<0.01 %" }
        return text + " %"
    }

    /// `4.2 ms` below 100 ms, `250 ms` above; `–` when not known.
    static func milliseconds(_ seconds: Double?) -> String {
        guard let seconds else { return "–" }
        return Self.fixed(seconds * 1000, digits: seconds < 0.1 ? 1 : 0) + " ms"
    }

    /// `45 s`, `12 min`, `4 h 39 min`, `3 d 5 h`: whole minutes below 2 days, whole hours above, never
    /// rounded to a coarser unit (4 h 39 min is not "5 h").
    static func span(_ seconds: Double) -> String {
        let s = Int(Swift.max(0, seconds).rounded())
        if s < 120 { return "\(s) s" }
        let minutes = Int((Double(s) / 60).rounded(.toNearestOrAwayFromZero))
        if minutes < 120 { return "\(minutes) min" }
        if minutes < 2_880 { return minutes % 60 == 0 ? "\(minutes / 60) h" : "\(minutes / 60) h \(minutes % 60) min" }
        let hours = Int((Double(s) / 3_600).rounded(.toNearestOrAwayFromZero))
        return hours % 24 == 0 ? "\(hours / 24) d" : "\(hours / 24) d \(hours % 24) h"
    }

    /// `2026-11-29 22:50:03 UTC`.
    static func time(_ seconds: Double) -> String {
        let parts = Self.utc(seconds)
        return "\(parts.date) \(Self.two(parts.hour)):\(Self.two(parts.minute)):\(Self.two(parts.second)) UTC"
    }

    /// `2026-11-29`.
    static func date(_ seconds: Double) -> String { Self.utc(seconds).date }

    private static func utc(_ seconds: Double) -> (date: String, hour: Int, minute: Int, second: Int) {
        var t = time_t(seconds.isFinite ? seconds.rounded(.down) : 0)
        var parts = tm()
        gmtime_r(&t, &parts)
        let date = "\(parts.tm_year + 1900)-\(Self.two(Int(parts.tm_mon) + 1))-\(Self.two(Int(parts.tm_mday)))"
        return (date, Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    private static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// `x` with one decimal, for SVG coordinates.
    static func decimal(_ x: Double) -> String { Self.fixed(x, digits: 1) }

    /// `x` rounded to `digits` decimals (0…3), in plain digits.
    static func fixed(_ x: Double, digits: Int) -> String {
        let scale = [1.0, 10, 100, 1_000][Swift.min(Swift.max(digits, 0), 3)]
        let scaled = Int64((x * scale).rounded(.toNearestOrAwayFromZero))
        guard digits > 0 else { return "\(scaled)" }
        let sign = scaled < 0 ? "-" : ""
        let whole = abs(scaled) / Int64(scale)
        var fraction = "\(abs(scaled) % Int64(scale))"
        while fraction.count < digits { fraction = "0" + fraction }
        return "\(sign)\(whole).\(fraction)"
    }
}
