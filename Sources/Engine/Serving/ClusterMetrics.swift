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

    /// Registers `urlpoll_cluster_info{urlpoll_instance=…}` (always 1), `urlpoll_cluster_instances` and
    /// `urlpoll_cluster_leader` in `registry`.
    public init(registry: PrometheusCollectorRegistry, instance: String) {
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
    }

    /// Records a heartbeat's count and whether this instance leads.
    public func beat(instances: Int?, leading: Bool) {
        if let instances { self.instances.set(Int64(instances)) }
        self.leader.set(Int64(leading ? 1 : 0))
    }
}
