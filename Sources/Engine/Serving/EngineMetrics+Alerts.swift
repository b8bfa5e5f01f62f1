import Prometheus

// urlpoll_alerts_total{sink,result} and urlpoll_alert_queue_length: the alert dispatcher's report, in the
// registry with urlpoll's other fixed-cardinality metrics (2 sinks × 3 results, all made at start).
extension EngineMetrics: AlertObserver {
    public func alertFinished(_ alert: Alert, _ result: AlertResult) {
        self.alertCounters[alert.sink]?[result]?.increment()
    }

    public func alertQueueChanged(length: Int) {
        self.alertQueueLength.set(Double(length))
    }

    /// One counter per sink (`post`, `exec`) and result (`delivered`, `failed`, `dropped`), so every series
    /// exists, at 0, from the start.
    static func makeAlertCounters(_ registry: PrometheusCollectorRegistry) -> [String: [AlertResult: Counter]] {
        let descriptor = MetricNameDescriptor(
            namespace: "urlpoll", metricName: "alerts", unitName: "total",
            helpText:
                "Alerts by sink (post: urlpoll.post, exec: urlpoll.exec) and result: delivered, failed (every attempt failed, or shutdown came first) or dropped (the queue was full)."
        )
        var counters: [String: [AlertResult: Counter]] = [:]
        for sink in ["post", "exec"] {
            for result in AlertResult.allCases {
                counters[sink, default: [:]][result] = registry.makeCounter(
                    descriptor: descriptor, labels: [("sink", sink), ("result", result.rawValue)])
            }
        }
        return counters
    }

    static func makeAlertQueueLength(_ registry: PrometheusCollectorRegistry) -> Gauge {
        registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "urlpoll", metricName: "alert_queue", unitName: "length",
                helpText: "Alerts raised and not yet delivered or given up: waiting, or being attempted."))
    }
}
