import Synchronization

/// Handoff carries a value into a child task that takes it once, so the task's closure does not keep it
/// alive for as long as the task runs. A reload hands the new pool its first Resources this way: 50,000 of
/// them (and the previous script's States they resume) are released once they are in the timer queue,
/// instead of living as long as the pool; the session hands the first pool to polling the same way.
public final class Handoff<Value: Sendable>: Sendable {
    private let value: Mutex<Value?>

    public init(_ value: consuming Value) {
        self.value = Mutex(value)
    }

    /// The value, the first time; nil after.
    public func take() -> Value? {
        self.value.withLock { $0.take() }
    }
}
