/// Backoff is the policy Sleep applies after every poll: how long a Resource waits before it is queued
/// again.
public enum Backoff {
    /// The longest sleep a policy may ask for: one day. Longer returns are capped to it.
    public static let maximum: Duration = .seconds(86_400)

    /// The seed's policy: `interval + error_backoff × error_count`, capped at ``maximum``.
    ///
    /// | interval | error_backoff | error_count | sleep |
    /// |---|---|---|---|
    /// | 60 | 10 | 0 | 60 |
    /// | 60 | 10 | 1 | 70 |
    /// | 60 | 10 | 2 | 80 |
    /// | 15 | 5 | 3 | 30 |
    public static func linear(interval: Duration, errorBackoff: Duration, errorCount: Int) -> Duration {
        let seconds = interval.seconds + errorBackoff.seconds * Double(errorCount)
        return Self.duration(fromSeconds: seconds) ?? Self.maximum
    }

    /// Checks a number of seconds returned by a script: finite and not negative, then capped at
    /// ``maximum``. Returns `nil` for a value that cannot be a sleep.
    public static func duration(fromSeconds seconds: Double) -> Duration? {
        guard seconds.isFinite, seconds >= 0 else { return nil }
        return .seconds(checked: min(seconds, Self.maximum.seconds))
    }
}

/// SleepPolicy decides how long a Resource sleeps after a poll.
public protocol SleepPolicy: Sendable {
    func delay(for resource: Resource, settings: Settings) async -> Duration
}

/// The seed's linear policy, with no script involved.
public struct LinearBackoff: SleepPolicy {
    public init() {}

    public func delay(for resource: Resource, settings: Settings) async -> Duration {
        Backoff.linear(
            interval: settings.interval(for: resource.target), errorBackoff: settings.errorBackoff,
            errorCount: resource.errorCount)
    }
}
