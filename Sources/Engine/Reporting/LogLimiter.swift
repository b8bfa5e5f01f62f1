import Synchronization

/// LogLimiter keeps repeated messages from flooding the log: per key, at most `burst` messages pass in each
/// `window`; the rest are counted, and the next one let through says how many were held back.
///
/// A hook that fails the same way for ten thousand URLs, or ten thousand URLs going down at once, then
/// costs a handful of lines, not ten thousand.
public final class LogLimiter: Sendable {
    private struct Entry {
        var windowStart: Double
        var passed: Int
        var held: Int
    }

    private let entries = Mutex([String: Entry]())
    private let burst: Int
    private let window: Double
    private let now: @Sendable () -> Double

    /// - Parameters:
    ///   - burst: Messages per key let through in each window.
    ///   - window: The window's length.
    ///   - now: Seconds on some monotonic scale (injected in tests).
    public init(
        burst: Int = 5, window: Duration = .seconds(60),
        now: (@Sendable () -> Double)? = nil
    ) {
        let start = ContinuousClock.now
        self.burst = burst
        self.window = window.seconds
        self.now = now ?? { start.duration(to: .now).seconds }
    }

    /// Whether a message under `key` may be logged now, and how many under it were held back since the last
    /// one that was.
    public func admit(_ key: String) -> (pass: Bool, held: Int) {
        let now = self.now()
        return self.entries.withLock { entries in
            if entries.count > 10_000 { entries.removeAll(keepingCapacity: true) }
            var entry = entries[key] ?? Entry(windowStart: now, passed: 0, held: 0)
            if now - entry.windowStart >= self.window {
                entry.windowStart = now
                entry.passed = 0
            }
            guard entry.passed < self.burst else {
                entry.held += 1
                entries[key] = entry
                return (false, 0)
            }
            let held = entry.held
            entry.passed += 1
            entry.held = 0
            entries[key] = entry
            return (true, held)
        }
    }

    /// " (N similar messages not logged)" when `held` > 0.
    public static func suffix(_ held: Int) -> String {
        held > 0 ? " (\(held) similar message\(held == 1 ? "" : "s") not logged)" : ""
    }
}
