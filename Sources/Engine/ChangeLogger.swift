import Logging

/// ChangeLogger logs every change of a URL's status or health at `info`, so a text-mode user sees
/// transitions as they happen, between the monitor's ticks. First results are not changes and are not
/// logged (starting with ten thousand URLs logs nothing).
public struct ChangeLogger: StateObserver {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func changed(_ state: State, previous: State?) async {
        guard let previous else { return }
        self.logger.info(
            "\(state.url): \(previous.status) (\(previous.health.rawValue)) -> \(state.status) (\(state.health.rawValue))",
            metadata: state.detail.map { ["detail": "\($0)"] } ?? [:])
    }
}
