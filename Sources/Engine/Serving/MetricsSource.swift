import Synchronization

/// MetricsSource is what the listener serves: the running pool's monitor, its URLs' series labels, its
/// settings and the script's `modules`. The session sets it when a pool is built and on each reload, so a
/// scrape always reads the script that runs.
public final class MetricsSource: Sendable {
    /// The script that runs now, as the listener sees it.
    public struct Current: Sendable {
        public let monitor: StateMonitor
        public let series: [ProbeMetrics.Series]
        public let settings: Settings
        public let modules: [String: ProbeModule]
        /// The URL schemes the script polls (`http`, `https`): `/probe` polls no other.
        public let schemes: Set<String>
        /// The script's URLs, for `/status` (names and groups).
        public let targets: [Target]
        /// Counts the scripts served: a new number on each ``MetricsSource/serve(monitor:targets:settings:modules:)``,
        /// so what was made for another script (a cached `/status`) is not served for this one.
        public let version: Int
    }

    private let state = Mutex<Current?>(nil)

    public init() {}

    /// Serves `monitor`'s states for `targets` from now on.
    public func serve(
        monitor: StateMonitor, targets: [Target], settings: Settings, modules: [String: ProbeModule] = [:]
    ) {
        var schemes: Set<String> = []
        for target in targets {
            if let end = target.url.firstIndex(of: ":") { schemes.insert(target.url[..<end].lowercased()) }
        }
        let series = ProbeMetrics.series(for: targets)
        monitor.keepTickSnapshots()
        self.state.withLock {
            $0 = Current(
                monitor: monitor, series: series, settings: settings, modules: modules, schemes: schemes,
                targets: targets, version: ($0?.version ?? 0) + 1)
        }
    }

    /// The script served now, or nil before the first is loaded.
    public var current: Current? { self.state.withLock { $0 } }
}
