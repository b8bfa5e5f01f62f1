/// Settings are the script's global tunables, the seed's constants (`numPollers`, `pollInterval`,
/// `statusInterval`, `errTimeout`) plus a request timeout and method.
public struct Settings: Sendable, Hashable {
    /// Poller tasks that take due URLs and start their polls (`pollers`, default 2). A poll waiting on the
    /// network holds no poller; polls in flight are bounded by ``PollerPool``'s in-flight limit, per origin
    /// by `max(pollers, 8)`.
    public var pollers: Int = 2
    /// Time between polls of a healthy URL (`poll_interval`, default 60 s).
    public var pollInterval: Duration = .seconds(60)
    /// Time between monitor ticks, when the reporter runs (`status_interval`, default 10 s).
    public var statusInterval: Duration = .seconds(10)
    /// Extra time per consecutive failed poll (`error_backoff`, default 10 s).
    public var errorBackoff: Duration = .seconds(10)
    /// Time before a request is abandoned and counted as a failure (`timeout`, default 10 s).
    public var timeout: Duration = .seconds(10)
    /// Request method (`method`, default `HEAD`, as the seed's `http.Head`).
    public var method: String = "HEAD"
    /// Where the HTTP listener (`/metrics`, `/probe`, `/healthz`) listens (`listen`, e.g.
    /// `"127.0.0.1:9464"`); nil, the default, runs none.
    public var listen: ListenAddress?
    /// Which per-URL families `/metrics` writes (`metrics`, `"default"` or `"full"`; ``MetricSet``).
    public var metrics: MetricSet = .default
    /// The history store's folder (`data`, e.g. `"/var/lib/urlpoll"`); `run --data` overrides it; nil, the
    /// default, keeps no history.
    public var data: String?
    /// The PostgreSQL database whose schedule this instance shares with others running the same script
    /// (`store`, a `postgresql://user@host:port/database` URL, no password); `run --store` overrides it;
    /// nil, the default, polls on this instance's own schedule.
    public var store: String?
    /// The status page's title (`title`, default `"urlpoll"`), also in `/status`.
    public var title: String = "urlpoll"

    public init() {}

    /// The interval that applies to `target`: its own, or `poll_interval`.
    public func interval(for target: Target) -> Duration {
        target.interval ?? self.pollInterval
    }

    /// The timeout that applies to `target`: its own, or `timeout`.
    public func timeout(for target: Target) -> Duration {
        target.timeout ?? self.timeout
    }

    /// The method that applies to `target`: its own, or `method`; a HEAD becomes a GET when a check wants
    /// the body.
    public func method(for target: Target) -> String {
        let method = target.method ?? self.method
        return method == "HEAD" && target.captureBody ? "GET" : method
    }
}
