import Prometheus
import Synchronization

/// EngineMetrics holds urlpoll's own fixed-cardinality metrics in a swift-prometheus registry, and hears
/// every poll as a ``StateObserver`` to count it. Updating a metric is an atomic store, so hearing a poll
/// never waits on a scrape.
///
/// Every name and label here is fixed in the source; nothing from the script reaches the registry (it
/// stops the process on a name or type clash).
///
/// Families: `urlpoll_polls_total{result="success|failure"}` (counter), `urlpoll_poll_lateness_seconds`
/// (histogram, seconds a poll started after its planned time), `urlpoll_urls` (gauge),
/// `urlpoll_reloads_total{result="success|failure"}` (counter), `urlpoll_hook_errors_total{hook}` (counter),
/// `urlpoll_hook_duration_seconds{hook}` (histogram), `urlpoll_lua_memory_bytes` (gauge),
/// `urlpoll_report_ticks_skipped_total` (counter, ticks whose report was skipped), and, as the alert
/// dispatcher's ``AlertObserver``, `urlpoll_alerts_total{sink="post|exec",result="delivered|failed|dropped"}`
/// (counter) and `urlpoll_alert_queue_length` (gauge).
public final class EngineMetrics: StateObserver {
    public let registry = PrometheusCollectorRegistry()
    private let pollSuccesses: Counter
    private let pollFailures: Counter
    private let lateness: DurationHistogram
    private let urls: Gauge
    private let reloadSuccesses: Counter
    private let reloadFailures: Counter
    private let luaMemory: Gauge
    private let reportTicksSkipped: Counter
    /// The lateness of the latest polls, newest last, for ``health(expected:polled:)``.
    private let recent = Mutex(LatenessWindow())
    private let hooks = Mutex<[String: HookSeries]>([:])
    /// What is wrong with the shared schedule (``ClusterMetrics/problem(_:_:)``), by concern.
    private let clusterProblems = Mutex<[ClusterConcern: String]>([:])
    /// `urlpoll_alerts_total`, by sink and result (``EngineMetrics+Alerts``).
    let alertCounters: [String: [AlertResult: Counter]]
    /// `urlpoll_alert_queue_length`.
    let alertQueueLength: Gauge

    /// Lateness buckets, in seconds: from on time to far behind.
    static let latenessBuckets: [Duration] = [
        .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60),
    ]
    /// Hook-duration buckets: a hook runs within its instruction budget (about 50 ms by default).
    static let hookBuckets: [Duration] = [
        .microseconds(50), .microseconds(200), .milliseconds(1), .milliseconds(5), .milliseconds(20),
        .milliseconds(50), .milliseconds(200), .seconds(1),
    ]
    /// `/healthz` answers 503 while a recent poll started more than this late.
    public static var latenessBound: Duration { .seconds(10) }

    public init() {
        let polls = MetricNameDescriptor(
            namespace: "urlpoll", metricName: "polls", unitName: "total",
            helpText: "Polls finished, by result: success (up or degraded) or failure (down).")
        self.pollSuccesses = self.registry.makeCounter(descriptor: polls, labels: [("result", "success")])
        self.pollFailures = self.registry.makeCounter(descriptor: polls, labels: [("result", "failure")])
        self.lateness = self.registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "urlpoll", metricName: "poll_lateness", unitName: "seconds",
                helpText: "Seconds each poll started after its planned time: above zero when the engine cannot keep up."
            ), labels: [], buckets: Self.latenessBuckets)
        self.urls = self.registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "urlpoll", metricName: "urls", unitName: "", helpText: "URLs the loaded script polls."))
        let reloads = MetricNameDescriptor(
            namespace: "urlpoll", metricName: "reloads", unitName: "total",
            helpText: "Script reloads (SIGHUP or --watch), by result.")
        self.reloadSuccesses = self.registry.makeCounter(descriptor: reloads, labels: [("result", "success")])
        self.reloadFailures = self.registry.makeCounter(descriptor: reloads, labels: [("result", "failure")])
        self.luaMemory = self.registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "urlpoll", metricName: "lua_memory", unitName: "bytes",
                helpText: "Bytes the script's Lua state holds, after its last call."
            ))
        self.reportTicksSkipped = self.registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "urlpoll", metricName: "report_ticks_skipped", unitName: "total",
                helpText:
                    "Ticks whose report was skipped: the previous tick's report was still under way, or the tick fell due while urlpoll or its store was stopped or frozen."
            ))
        self.alertCounters = Self.makeAlertCounters(self.registry)
        self.alertQueueLength = Self.makeAlertQueueLength(self.registry)
    }

    public func polled(_ state: State, previous: State?) async {
        self.record(state)
    }

    public func changed(_ state: State, previous: State?) async {}

    /// Counts one finished poll.
    public func record(_ state: State) {
        (state.health == .down ? self.pollFailures : self.pollSuccesses).increment()
        self.lateness.record(state.lateness)
        self.recent.withLock { $0.add(state.lateness) }
    }

    /// Sets `urlpoll_urls` (on load and every reload).
    public func loaded(urls count: Int) {
        self.urls.set(Double(count))
    }

    /// Counts a tick whose report was skipped (``StateMonitor/run(every:clock:)``).
    public func reportTickSkipped() {
        self.reportTicksSkipped.increment()
    }

    /// Counts `count` ticks missed while urlpoll or its store was frozen, whose reports are not made up.
    public func reportTicksMissed(_ count: Int) {
        self.reportTicksSkipped.increment(by: Int64(count))
    }

    /// Counts a reload.
    public func reloaded(success: Bool) {
        (success ? self.reloadSuccesses : self.reloadFailures).increment()
    }

    /// Records one call into the script: how long it took and the Lua state's size after. `hook` is one of
    /// urlpoll's fixed hook names (`backoff`, `check`, `report`, `on_result`, `on_change`).
    public func hookCalled(_ hook: String, duration: Duration, luaMemory: Int) {
        self.hookSeries(hook).duration.record(duration)
        self.luaMemory.set(Double(luaMemory))
    }

    /// Records the Lua state's size in bytes once a script (or a reload's new one) has loaded, before any
    /// hook call measures it again.
    public func scriptLoaded(luaMemory: Int) {
        self.luaMemory.set(Double(luaMemory))
    }

    /// Counts a hook call that raised, ran past its budget or memory, or returned a wrong value.
    public func hookFailed(_ hook: String) {
        self.hookSeries(hook).errors.increment()
    }

    private func hookSeries(_ hook: String) -> HookSeries {
        if let series = self.hooks.withLock({ $0[hook] }) { return series }
        let series = HookSeries(
            duration: self.registry.makeDurationHistogram(
                descriptor: MetricNameDescriptor(
                    namespace: "urlpoll", metricName: "hook_duration", unitName: "seconds",
                    helpText: "Seconds each call into the script's hooks took, by hook."),
                labels: [("hook", hook)], buckets: Self.hookBuckets),
            errors: self.registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "urlpoll", metricName: "hook_errors", unitName: "total",
                    helpText: "Hook calls that raised, ran past their budget or returned a wrong value, by hook."),
                labels: [("hook", hook)]))
        self.hooks.withLock { $0[hook] = series }
        return series
    }

    private struct HookSeries: Sendable {
        let duration: DurationHistogram
        let errors: Counter
    }

    /// Whether the engine is keeping up: nil when it is, else the reason in words.
    /// - Parameters:
    ///   - expected: URLs the script polls.
    ///   - polled: URLs with a state so far.
    public func health(expected: Int, polled: Int) -> String? {
        let cluster = self.clusterProblems.withLock { problems in
            ClusterConcern.allCases.compactMap { problems[$0] }
        }
        if !cluster.isEmpty { return cluster.joined(separator: "; ") }
        if polled < expected {
            return "the first pass is not done: \(polled) of \(expected.counted("URL")) polled"
        }
        let worst = self.recent.withLock { $0.worst }
        if worst > Self.latenessBound {
            return "polls are starting up to \(formatSeconds(worst.seconds.rounded())) s behind schedule "
                + "(the bound is \(formatSeconds(Self.latenessBound.seconds)) s): the engine cannot keep up"
        }
        return nil
    }

    /// Records what is wrong with the shared schedule for `concern`, or that nothing is (nil).
    func cluster(_ concern: ClusterConcern, problem words: String?) {
        self.clusterProblems.withLock { $0[concern] = words }
    }

    /// The lateness of the last ``size`` polls.
    struct LatenessWindow {
        static let size = 64
        private var values: [Duration] = []
        private var next = 0

        mutating func add(_ value: Duration) {
            if self.values.count < Self.size {
                self.values.append(value)
            } else {
                self.values[self.next] = value
                self.next = (self.next + 1) % Self.size
            }
        }

        var worst: Duration { self.values.max() ?? .zero }
    }
}
