/// AlertObserver hears what becomes of each alert the ``AlertDispatcher`` is given, and how many are
/// outstanding, for `urlpoll_alerts_total{sink,result}` and `urlpoll_alert_queue_length`. It is called on
/// the dispatcher's tasks and on the hook's (for `enqueue`), so it must not wait.
public protocol AlertObserver: Sendable {
    /// One alert's end: delivered, failed (every attempt failed, or shutdown came first) or dropped (the
    /// queue was full, or urlpoll was shutting down when it was raised).
    func alertFinished(_ alert: Alert, _ result: AlertResult)
    /// Alerts taken and not yet delivered or given up, waiting or being attempted.
    func alertQueueChanged(length: Int)
}

/// What became of an alert, the `result` label of `urlpoll_alerts_total`.
public enum AlertResult: String, Sendable, CaseIterable {
    case delivered
    case failed
    case dropped
}

extension Alert {
    /// The `sink` label of `urlpoll_alerts_total`: `post` (`urlpoll.post`, a webhook) or `exec`
    /// (`urlpoll.exec`, a command).
    public var sink: String {
        switch self {
        case .post: "post"
        case .exec: "exec"
        }
    }
}
