/// Target is one URL to poll, as the script declared it.
///
/// Fields left `nil` take the script-wide setting (`poll_interval`, `timeout`, `method`), resolved by
/// ``Settings`` so a command-line override of a setting reaches every URL that did not set its own.
public struct Target: Sendable, Hashable {
    /// The URL, exactly as written in the script.
    public var url: String
    /// The display label; defaults to the URL.
    public var name: String
    /// Request method for this URL, or `nil` for the script's `method`.
    public var method: String?
    /// Seconds before the request is abandoned, or `nil` for the script's `timeout`.
    public var timeout: Duration?
    /// Seconds between polls while healthy, or `nil` for the script's `poll_interval`.
    public var interval: Duration?
    /// Extra request headers, in the order the script gave them.
    public var headers: [Header]
    /// The statuses that count as success.
    public var expect: ExpectedStatus
    /// This URL's own backoff policy, overriding the global `backoff` hook.
    public var backoff: HookRef?
    /// This URL's own check, overriding the global `check` hook.
    public var check: HookRef?
    /// Whether polls keep the response headers (a hook reads them).
    public var captureHeaders = false
    /// Whether polls read and keep the response body (a `check` hook reads it); a HEAD becomes a GET.
    public var captureBody = false

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
        self.name = name ?? url
        self.method = method
        self.timeout = timeout
        self.interval = interval
        self.headers = headers
        self.expect = expect
        self.backoff = backoff
        self.check = check
    }
}

/// Header is one request header name and value.
public struct Header: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// ExpectedStatus is the set of HTTP status codes that count as a successful poll.
public struct ExpectedStatus: Sendable, Hashable, CustomStringConvertible {
    /// Inclusive ranges of status codes.
    public var ranges: [ClosedRange<Int>]

    /// 200–399: any success or redirect, as blackbox_exporter and Gatus users expect.
    public static let `default` = ExpectedStatus(ranges: [200...399])

    public init(ranges: [ClosedRange<Int>]) {
        self.ranges = ranges
    }

    public func contains(_ code: Int) -> Bool {
        self.ranges.contains { $0.contains(code) }
    }

    public var description: String {
        self.ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: ",")
    }
}

/// HookRef names a Lua function held by the script host: its registry reference and where it was defined.
public struct HookRef: Sendable, Hashable {
    /// The Lua registry reference; meaningful only to the ``ScriptHost`` that loaded the script.
    let ref: Int32
    /// Where the function was defined, as `file:line`.
    public let location: String
}
