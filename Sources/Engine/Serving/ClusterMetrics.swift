import Prometheus

/// ClusterMetrics is what `/metrics` says about the shared schedule (`--store`): this instance's name, how
/// many instances beat, and whether this one runs `report`.
///
/// The instance is named in the label `urlpoll_instance`, not `instance`: urlpoll's per-URL series use
/// `instance` for the URL, as blackbox_exporter's do (README, "Run as a service"), and Prometheus sets the
/// scrape target's `instance` itself.
public struct ClusterMetrics: Sendable {
    private let instances: Gauge
    private let leader: Gauge
    private let scriptCurrent: Gauge
    /// Where `/healthz` reads what is wrong with the shared schedule.
    private let engine: EngineMetrics

    /// Registers `urlpoll_cluster_info{urlpoll_instance=…}` (always 1), `urlpoll_cluster_instances`,
    /// `urlpoll_cluster_leader` and `urlpoll_cluster_script_current{urlpoll_instance=…}` in `metrics`'
    /// registry; what is wrong with the schedule goes to `metrics`' `/healthz` (``problem(_:_:)``).
    public init(metrics: EngineMetrics, instance: String) {
        let registry = metrics.registry
        self.engine = metrics
        let info = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "urlpoll", metricName: "cluster_info", unitName: "",
                helpText: "1, labelled with this instance's name in the shared schedule (--store)."),
            labels: [("urlpoll_instance", instance)])
        info.set(Int64(1))
        self.instances = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "urlpoll", metricName: "cluster_instances", unitName: "",
                helpText:
                    "Instances sharing the schedule whose heartbeat is recent (3 status_intervals), this one included."
            ))
        self.leader = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "urlpoll", metricName: "cluster_leader", unitName: "",
                helpText: "1 while this instance runs report for the whole fleet, else 0."))
        self.scriptCurrent = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "urlpoll", metricName: "cluster_script_current", unitName: "",
                helpText:
                    "1 while the shared schedule follows this instance's script (it polls), 0 while it follows another (this instance polls nothing)."
            ),
            labels: [("urlpoll_instance", instance)])
        self.scriptCurrent.set(Int64(1))
    }

    /// Records whether the schedule follows this instance's script.
    public func script(current: Bool) {
        self.scriptCurrent.set(Int64(current ? 1 : 0))
    }

    /// Says what is wrong with the shared schedule for `concern` (`/healthz` answers 503 with these words
    /// while any concern has some), or that nothing is (nil).
    public func problem(_ concern: ClusterConcern, _ words: String?) {
        self.engine.cluster(concern, problem: words)
    }

    /// Records a heartbeat's count and whether this instance leads.
    public func beat(instances: Int?, leading: Bool) {
        if let instances { self.instances.set(Int64(instances)) }
        self.leader.set(Int64(leading ? 1 : 0))
    }
}

/// What can be wrong with the shared schedule, each said on `/healthz` until it is right again.
public enum ClusterConcern: String, Sendable, CaseIterable {
    /// The schedule follows another instance's script: this one polls nothing.
    case script
    /// PostgreSQL does not answer: this instance can neither claim nor write back.
    case store
}
