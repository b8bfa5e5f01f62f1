/// Target is one URL to poll, as the script declared it.
///
/// Fields left `nil` take the script-wide setting (`poll_interval`, `timeout`, `method`), resolved by
/// ``Settings`` so a command-line override of a setting reaches every URL that did not set its own.
///
/// A Target is four words (`MemoryLayout<Target>.stride` is 32 bytes on 64-bit systems): the URL, its
/// ordinal and flags, and one optional reference to the options few URLs set (a name, method, headers,
/// body, hooks, labels, TLS options…). A plain URL entry, most of a long list, has no options box, and its
/// request (``request``) is read from the URL when a poll asks for it, so a million URLs take a million
/// strings and little else.
public struct Target: Sendable, Hashable {
    /// The URL, exactly as written in the script (with its credentials, if any: print ``displayURL``).
    public var url: String {
        didSet {
            let displayURL = Self.displayURL(of: self.url)
            self.updateOptions { $0.displayURL = displayURL }
            self.describeRequest()
        }
    }

    /// The URL as urlpoll prints and exports it (reports, JSON, logs, `check` output, Lua's `s.url`): its
    /// password, if any, replaced by `xxxxx` (`http://probe:xxxxx@host/`).
    public var displayURL: String { self.options?.fields.displayURL ?? self.url }

    /// The request this URL makes, worked out from `url`, `headers` and `body` (nil when `url` is not an
    /// absolute http or https URL): kept when the URL has headers, a body or credentials, or needs
    /// Foundation to read it; else read from the URL by a scan of its bytes (``RequestDescription``).
    public var request: RequestDescription? {
        if self.flags.contains(.keptRequest) { return self.options?.fields.request }
        return RequestDescription(url: self.url, headers: [])
    }

    /// The request content for a POST, PUT or PATCH check (the script's `body`), sent with its length.
    public var body: String? {
        get { self.options?.fields.body }
        set {
            self.updateOptions { $0.body = newValue }
            self.describeRequest()
        }
    }

    /// The display label; defaults to the URL.
    public var name: String {
        get { self.options?.fields.name ?? self.displayURL }
        set {
            let name = newValue == self.displayURL ? nil : newValue
            self.updateOptions { $0.name = name }
        }
    }

    /// The URL's number among the script's URLs that differ only by their credentials (1 for the first, and
    /// for a URL no other prints like): with ``displayURL``, the key of its rows in the `--data` store
    /// (``HistoryKey``), unique per URL and holding no password. The loader numbers them, in script order.
    public var ordinal: Int {
        get { Int(self.storedOrdinal) }
        set { self.storedOrdinal = UInt32(clamping: newValue) }
    }

    /// The key of this URL's rows in the `--data` store.
    public var historyKey: HistoryKey { HistoryKey(url: self.displayURL, ordinal: self.ordinal) }

    /// Request method for this URL, or `nil` for the script's `method`.
    public var method: String? {
        get { self.options?.fields.method }
        set { self.updateOptions { $0.method = newValue } }
    }

    /// How long a poll may take before it is abandoned (a `timeout` failure), or `nil` for the script's
    /// `timeout`. Read from the script in seconds.
    public var timeout: Duration? {
        get { self.options?.fields.timeout }
        set { self.updateOptions { $0.timeout = newValue } }
    }

    /// The time between polls while healthy, or `nil` for the script's `poll_interval`. Read from the
    /// script in seconds.
    public var interval: Duration? {
        get { self.options?.fields.interval }
        set { self.updateOptions { $0.interval = newValue } }
    }

    /// Extra request headers, in the order the script gave them.
    public var headers: [Header] {
        get { self.options?.fields.headers ?? [] }
        set {
            self.updateOptions { $0.headers = newValue }
            self.describeRequest()
        }
    }

    /// The statuses that count as success.
    public var expect: ExpectedStatus {
        get { self.options?.fields.expect ?? .default }
        set { self.updateOptions { $0.expect = newValue } }
    }

    /// This URL's own backoff policy, overriding the global `backoff` hook.
    public var backoff: HookRef? {
        get { self.options?.fields.backoff }
        set { self.updateOptions { $0.backoff = newValue } }
    }

    /// This URL's own check, overriding the global `check` hook.
    public var check: HookRef? {
        get { self.options?.fields.check }
        set { self.updateOptions { $0.check = newValue } }
    }

    /// The URL's own Prometheus labels (its `labels` table), sorted by name; validated at load.
    public var labels: [MetricLabel] {
        get { self.options?.fields.labels ?? [] }
        set { self.updateOptions { $0.labels = newValue } }
    }

    /// The URL's group on the status page and in `/status` (its `group` field), or `nil`.
    public var group: String? {
        get { self.options?.fields.group }
        set { self.updateOptions { $0.group = newValue } }
    }

    /// Whether polls keep the response headers (a hook reads them).
    public var captureHeaders: Bool {
        get { self.flags.contains(.captureHeaders) }
        set { self.flags.set(.captureHeaders, newValue) }
    }

    /// Whether polls read and keep the response body (a `check` hook reads it); a HEAD becomes a GET.
    public var captureBody: Bool {
        get { self.flags.contains(.captureBody) }
        set { self.flags.set(.captureBody, newValue) }
    }

    /// For `tcp://` URLs: the bytes written once the connection is up (`send`), or `nil` to write nothing.
    public var send: [UInt8]? {
        get { self.options?.fields.send }
        set { self.updateOptions { $0.send = newValue } }
    }

    /// For `tls://` and `https://` URLs: how the certificate is checked (`tls = { ... }`), or `nil` for the
    /// defaults (verified against the system's roots, for the URL's host).
    public var tls: TLSOptions? {
        get { self.options?.fields.tls }
        set { self.updateOptions { $0.tls = newValue } }
    }

    /// For `dns://` URLs: the response codes that count as success (`expect = { "NOERROR", "NXDOMAIN" }`), or
    /// `nil` for NOERROR with at least one answer.
    public var rcodes: [String]? {
        get { self.options?.fields.rcodes }
        set { self.updateOptions { $0.rcodes = newValue } }
    }

    /// The options few URLs set, behind one reference (copied on write): `nil` in each field is the default
    /// (the name is the displayed URL, the displayed URL is the URL, `expect` is 200–399…).
    fileprivate struct Options: Sendable, Hashable {
        var displayURL: String?
        var name: String?
        var method: String?
        var timeout: Duration?
        var interval: Duration?
        var headers: [Header] = []
        var expect: ExpectedStatus = .default
        var backoff: HookRef?
        var check: HookRef?
        var labels: [MetricLabel] = []
        var group: String?
        var body: String?
        var send: [UInt8]?
        var tls: TLSOptions?
        var rcodes: [String]?
        /// The request, kept when it cannot be read again cheaply from the URL alone (``Flags/keptRequest``).
        /// Worked out from the fields above, so not part of equality.
        var request: RequestDescription?

        static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.displayURL == rhs.displayURL && lhs.name == rhs.name && lhs.method == rhs.method
                && lhs.timeout == rhs.timeout && lhs.interval == rhs.interval && lhs.headers == rhs.headers
                && lhs.expect == rhs.expect && lhs.backoff == rhs.backoff && lhs.check == rhs.check
                && lhs.labels == rhs.labels && lhs.group == rhs.group && lhs.body == rhs.body
                && lhs.send == rhs.send && lhs.tls == rhs.tls && lhs.rcodes == rhs.rcodes
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(self.displayURL)
            hasher.combine(self.name)
            hasher.combine(self.method)
            hasher.combine(self.timeout)
            hasher.combine(self.interval)
            hasher.combine(self.headers)
            hasher.combine(self.expect)
            hasher.combine(self.backoff)
            hasher.combine(self.check)
            hasher.combine(self.labels)
            hasher.combine(self.group)
            hasher.combine(self.body)
            hasher.combine(self.send)
            hasher.combine(self.tls)
            hasher.combine(self.rcodes)
        }

        /// The options of a URL that sets none.
        static let none = Options()
    }

    /// What a Target is besides its URL and options: bits, so the common case stays four words.
    fileprivate struct Flags: OptionSet, Sendable, Hashable {
        let rawValue: UInt8
        static let captureHeaders = Flags(rawValue: 1 << 0)
        static let captureBody = Flags(rawValue: 1 << 1)
        /// The request is in the options (``Options/request``), or there is none: the URL has headers, a body
        /// or credentials, or is not in the form ``RequestDescription/URLParts`` scans.
        static let keptRequest = Flags(rawValue: 1 << 2)

        mutating func set(_ flag: Flags, _ on: Bool) {
            if on { self.insert(flag) } else { self.remove(flag) }
        }
    }

    private var options: Shared<Options>?
    private var storedOrdinal: UInt32 = 1
    private var flags: Flags = []

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
        self.url = url
        if let displayURL = Self.displayURL(of: url) { self.updateOptions { $0.displayURL = displayURL } }
        if let name, name != self.displayURL { self.updateOptions { $0.name = name } }
        if method != nil || timeout != nil || interval != nil || !headers.isEmpty || expect != .default
            || backoff != nil || check != nil
        {
            self.updateOptions { options in
                options.method = method
                options.timeout = timeout
                options.interval = interval
                options.headers = headers
                options.expect = expect
                options.backoff = backoff
                options.check = check
            }
        }
        self.describeRequest()
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        guard lhs.url == rhs.url, lhs.storedOrdinal == rhs.storedOrdinal, lhs.flags == rhs.flags else { return false }
        switch (lhs.options, rhs.options) {
        case (nil, nil): return true
        case (let l?, let r?): return l == r
        case (let l?, nil), (nil, let l?): return l.fields == .none
        }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.url)
        hasher.combine(self.storedOrdinal)
        hasher.combine(self.flags)
        (self.options?.fields ?? .none).hash(into: &hasher)
    }

    /// The redacted form of `url`, or nil when it prints as written.
    private static func displayURL(of url: String) -> String? {
        guard RequestDescription.mayHaveUserInfo(url) else { return nil }
        let redacted = RequestDescription.redacting(url)
        return redacted == url ? nil : redacted
    }

    /// Changes the options, making the box on the first change.
    private mutating func updateOptions(_ change: (inout Options) -> Void) {
        if self.options == nil {
            var fresh = Options()
            change(&fresh)
            // Nothing set: stay without a box.
            if fresh == .none, fresh.request == nil { return }
            self.options = Shared(fresh)
        } else {
            change(&self.options!.fields)
        }
    }

    /// Works out the request again after `url`, `headers` or `body` changed: kept in the options unless a
    /// scan of the URL alone gives it.
    private mutating func describeRequest() {
        let headers = self.headers
        let body = self.body
        if headers.isEmpty, body == nil, !RequestDescription.mayHaveUserInfo(self.url),
            RequestDescription.URLParts(scanning: self.url) != nil
        {
            self.flags.remove(.keptRequest)
            if self.options?.fields.request != nil { self.options!.fields.request = nil }
            return
        }
        let request = RequestDescription(url: self.url, headers: headers, body: body.map { Array($0.utf8) })
        self.flags.insert(.keptRequest)
        if request != nil || self.options != nil {
            if self.options == nil { self.options = Shared(Options()) }
            self.options!.fields.request = request
        }
    }
}
