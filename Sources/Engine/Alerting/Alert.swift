/// Alert is something a hook asked the engine to send: a webhook POST or a command to run. Hooks only
/// record alerts; the ``AlertDispatcher`` delivers them after the hook returns, so a slow or dead receiver
/// never delays a poll or a tick.
public enum Alert: Sendable, Hashable {
    /// `urlpoll.post(url, body, headers)`.
    case post(url: String, body: [UInt8], headers: [Header])
    /// `urlpoll.exec(argv [, { stdin = text }])`: no shell; `argv[0]` is looked up on `PATH` unless it
    /// contains a slash. `input` is written to the command's standard input, which then ends (empty: the
    /// command reads end-of-file at once).
    case exec(argv: [String], input: [UInt8] = [])

    /// A short description for logs: `POST http://…` or `exec notify-send …`.
    public var summary: String {
        switch self {
        case .post(let url, _, _): "POST \(url)"
        case .exec(let argv, _): "exec " + argv.joined(separator: " ")
        }
    }
}

/// AlertSink takes alerts without waiting.
public protocol AlertSink: Sendable {
    func enqueue(_ alert: Alert)
}

/// AlertTransport performs one delivery attempt.
public protocol AlertTransport: Sendable {
    /// Sends `alert` once; throws when the receiver fails, answers outside 2xx, or the command exits non-zero.
    func deliver(_ alert: Alert, timeout: Duration) async throws
}
