/// HookRequest is one HTTP request a hook asked for with `urlpoll.http.request` (or `get`, `post`, or a
/// session's methods), read from its arguments while the hook's coroutine yields.
struct HookRequest: Sendable {
    /// The request method (RFC 9110 §9), upper-case.
    var method: String
    /// The URL as the script wrote it, credentials included (sent as Basic authentication, RFC 7617).
    var url: String
    /// The script's header fields, in its order.
    var headers: [Header]
    /// The request content, or nil for none.
    var body: [UInt8]?
    /// How long the whole exchange may take, redirects included; nil for the hook's URL's timeout.
    var timeout: Duration?
    /// How an `https://` hop's certificate is checked (`tls = { verify, ca_file, server_name }`); nil to
    /// verify against the system's roots and the URL's host. `server_name` applies to the URL's own host.
    var tls: TLSOptions?
    /// The session's cookies (RFC 6265), when the request is a session's; nil for a lone request.
    var cookies: CookieJar?
    /// The registry reference of the session's `cookies` table, written back when the response arrives.
    var session: Int32?
    /// The script line that made the request (`config.lua:12`), for messages.
    var location = ""
    /// Not an HTTP request but a `urlpoll.history` read of a ``RemoteHistoryStore``, which the hook waits on
    /// the same way; the other fields are then unused.
    var history: HistoryRead?

    /// The URL with its password replaced by `xxxxx`, for messages.
    var displayURL: String { RequestDescription.redacting(self.url) }

    /// What the hook waits on, for messages: `GET http://…`, or `the history of http://…`.
    var awaited: String {
        if let history { return "urlpoll.history of \(RequestDescription.redacting(history.url))" }
        return "\(self.method) \(self.displayURL)"
    }
}

extension HookRequest {
    /// A hook's wait on `urlpoll.history` (`read`), made at `location`.
    init(_ read: HistoryRead, location: String) {
        self.init(method: "", url: "", headers: [], body: nil, timeout: nil, tls: nil)
        self.location = location
        self.history = read
    }
}

/// HookResponse is what a hook's request got back: the last response after any redirects.
struct HookResponse: Sendable {
    /// The status code (RFC 9110 §15).
    var code: Int
    /// The reason phrase the server sent.
    var reason: String
    /// The response's header fields, in the order received.
    var headers: [Header]
    /// The content, up to ``HookHTTPClient/maximumBodySize`` bytes.
    var body: [UInt8]
    /// From sending the first request to the end of the last response's content (read up to the limit).
    var latency: Duration
    /// The URL that answered (after redirects), its password redacted.
    var url: String
    /// The phases of the exchange, summed over the hops, as a poll's (``PhaseTimings``).
    var timings = PhaseTimings()
    /// The last `https://` hop's connection: the chain the server presented, its TLS version.
    var tls: TLSFacts?
}

/// HookOutcome is what a waiting hook is resumed with.
enum HookOutcome: Sendable {
    /// A response arrived; the session's cookies as they are afterwards.
    case response(HookResponse, cookies: CookieJar?, session: Int32?)
    /// No response: why, in words (`refused: …`, `timeout: …`), with the credentials redacted; or why a
    /// `urlpoll.history` read failed.
    case failure(String, cookies: CookieJar?, session: Int32?)
    /// What a `urlpoll.history` read of a ``RemoteHistoryStore`` answered.
    case history(HistorySummary)
}
