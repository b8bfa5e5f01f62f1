import Logging

/// ChangeLogger logs every change of a URL's status or health at `info`, so a text-mode user sees
/// transitions as they happen, between the monitor's ticks. First results are not changes and are not
/// logged (starting with ten thousand URLs logs nothing).
///
/// At most 20 changes are logged per 10 seconds; when thousands of URLs change at once the rest are counted,
/// and the next line logged says how many were not (`--format json` prints every change). The `detail`
/// is cut to ``Swift/String/detailLimit`` bytes (1 KiB), as the store keeps it: a `check` message may be
/// a whole response body.
public struct ChangeLogger: StateObserver {
    let logger: Logger
    let limiter: LogLimiter

    public init(logger: Logger, limiter: LogLimiter = LogLimiter(burst: 20, window: .seconds(10))) {
        self.logger = logger
        self.limiter = limiter
    }

    public func changed(_ state: State, previous: State?) async {
        guard let previous else { return }
        let (pass, held) = self.limiter.admit("change")
        guard pass else { return }
        let more = held > 0 ? " (\(held.counted("more change", "more changes")) not logged)" : ""
        self.logger.info(
            "\(state.url): \(previous.status) (\(previous.health.rawValue)) -> \(state.status) (\(state.health.rawValue))\(more)",
            metadata: state.detail.map { ["detail": "\($0.limited(toUTF8Bytes: String.detailLimit))"] } ?? [:])
    }
}
