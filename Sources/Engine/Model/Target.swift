/// Target is one URL to poll, as the script declared it.
///
/// Fields left `nil` take the script-wide setting (`poll_interval`, `timeout`, `method`), resolved by
/// ``Settings`` so a command-line override of a setting reaches every URL that did not set its own.
public struct Target: Sendable, Hashable {
    /// The URL, exactly as written in the script (with its credentials, if any: print ``displayURL``).
    public var url: String {
        get { self.shared.fields.url }
        set {
            self.shared.fields.url = newValue
            self.shared.fields.displayURL = RequestDescription.redacting(newValue)
            self.describeRequest()
        }
    }

    /// The URL as urlpoll prints and exports it (reports, JSON, logs, `check` output, Lua's `s.url`): its
    /// password, if any, replaced by `xxxxx` (`http://probe:xxxxx@host/`).
    public var displayURL: String { self.shared.fields.displayURL }

    /// The request this URL makes, worked out once from `url`, `headers` and `body` (nil when `url` is not
    /// an absolute http or https URL).
    public var request: RequestDescription? { self.shared.fields.request }

    /// The request content for a POST, PUT or PATCH check (the script's `body`), sent with its length.
    public var body: String? {
        get { self.shared.fields.body }
        set {
            self.shared.fields.body = newValue
            self.shared.fields.request?.body = newValue.map { Array($0.utf8) }
        }
    }

    /// The display label; defaults to the URL.
    public var name: String {
        get { self.shared.fields.name }
        set { self.shared.fields.name = newValue }
    }

    /// The URL's number among the script's URLs that differ only by their credentials (1 for the first, and
    /// for a URL no other prints like): with ``displayURL``, the key of its rows in the `--data` store
    /// (``HistoryKey``), unique per URL and holding no password. The loader numbers them, in script order.
    public var ordinal: Int {
        get { self.shared.fields.ordinal }
        set { self.shared.fields.ordinal = newValue }
    }

    /// The key of this URL's rows in the `--data` store.
    public var historyKey: HistoryKey { HistoryKey(url: self.displayURL, ordinal: self.ordinal) }

    /// Request method for this URL, or `nil` for the script's `method`.
    public var method: String? {
        get { self.shared.fields.method }
        set { self.shared.fields.method = newValue }
    }

    /// How long a poll may take before it is abandoned (a `timeout` failure), or `nil` for the script's
    /// `timeout`. Read from the script in seconds.
    public var timeout: Duration? {
        get { self.shared.fields.timeout }
        set { self.shared.fields.timeout = newValue }
    }

    /// The time between polls while healthy, or `nil` for the script's `poll_interval`. Read from the
    /// script in seconds.
    public var interval: Duration? {
        get { self.shared.fields.interval }
        set { self.shared.fields.interval = newValue }
    }

    /// Extra request headers, in the order the script gave them.
    public var headers: [Header] {
        get { self.shared.fields.headers }
        set {
            self.shared.fields.headers = newValue
            self.shared.fields.request?.setHeaders(newValue)
        }
    }

    /// The statuses that count as success.
    public var expect: ExpectedStatus {
        get { self.shared.fields.expect }
        set { self.shared.fields.expect = newValue }
    }

    /// This URL's own backoff policy, overriding the global `backoff` hook.
    public var backoff: HookRef? {
        get { self.shared.fields.backoff }
        set { self.shared.fields.backoff = newValue }
    }

    /// This URL's own check, overriding the global `check` hook.
    public var check: HookRef? {
        get { self.shared.fields.check }
        set { self.shared.fields.check = newValue }
    }

    /// The URL's own Prometheus labels (its `labels` table), sorted by name; validated at load.
    public var labels: [MetricLabel] {
        get { self.shared.fields.labels }
        set { self.shared.fields.labels = newValue }
    }

    /// The URL's group on the status page and in `/status` (its `group` field), or `nil`.
    public var group: String? {
        get { self.shared.fields.group }
        set { self.shared.fields.group = newValue }
    }

    /// Whether polls keep the response headers (a hook reads them).
    public var captureHeaders: Bool {
        get { self.shared.fields.captureHeaders }
        set { self.shared.fields.captureHeaders = newValue }
    }

    /// Whether polls read and keep the response body (a `check` hook reads it); a HEAD becomes a GET.
    public var captureBody: Bool {
        get { self.shared.fields.captureBody }
        set { self.shared.fields.captureBody = newValue }
    }

    /// For `tcp://` URLs: the bytes written once the connection is up (`send`), or `nil` to write nothing.
    public var send: [UInt8]? {
        get { self.shared.fields.send }
        set { self.shared.fields.send = newValue }
    }

    /// For `tls://` and `https://` URLs: how the certificate is checked (`tls = { ... }`), or `nil` for the
    /// defaults (verified against the system's roots, for the URL's host).
    public var tls: TLSOptions? {
        get { self.shared.fields.tls }
        set { self.shared.fields.tls = newValue }
    }

    /// For `dns://` URLs: the response codes that count as success (`expect = { "NOERROR", "NXDOMAIN" }`), or
    /// `nil` for NOERROR with at least one answer.
    public var rcodes: [String]? {
        get { self.shared.fields.rcodes }
        set { self.shared.fields.rcodes = newValue }
    }

    /// A Target travels in every Resource through the pool's channels and sleeps; its fields sit behind one
    /// reference so that moving a Resource costs one retain, and 100,000 sleeping URLs one copy each.
    fileprivate struct Fields: Sendable, Hashable {
        var url: String
        var displayURL: String
        var name: String
        var ordinal = 1
        var method: String?
        var timeout: Duration?
        var interval: Duration?
        var headers: [Header]
        var expect: ExpectedStatus
        var backoff: HookRef?
        var check: HookRef?
        var labels: [MetricLabel] = []
        var group: String?
        var captureHeaders = false
        var captureBody = false
        var body: String?
        var request: RequestDescription?
        var send: [UInt8]?
        var tls: TLSOptions?
        var rcodes: [String]?
    }

    private var shared: Shared<Fields>

    public init(
        url: String,
        name: String? = nil,
        method: String? = nil,
        timeout: Duration? = nil,
        interval: Duration? = nil,
        headers: [Header] = [],
        expect: ExpectedStatus = .default,
        backoff: HookRef? = nil,
        check: HookRef? = nil
    ) {
        let displayURL = RequestDescription.redacting(url)
        self.shared = Shared(
            Fields(
                url: url, displayURL: displayURL, name: name ?? displayURL,
                method: method, timeout: timeout, interval: interval, headers: headers,
                expect: expect, backoff: backoff, check: check))
        self.describeRequest()
    }

    /// Parses the URL into the request description; setting `headers` or `body` later only changes those.
    private mutating func describeRequest() {
        let fields = self.shared.fields
        self.shared.fields.request = RequestDescription(
            url: fields.url, headers: fields.headers, body: fields.body.map { Array($0.utf8) })
    }
}
