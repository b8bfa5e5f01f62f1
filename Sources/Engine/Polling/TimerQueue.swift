import Synchronization

/// TimerQueue holds sleeping Resources by wake-up slot. The pool's loop adds; each slot's task takes its
/// Resources once, when it wakes.
final class TimerQueue: Sendable {
    /// Wake-ups are rounded up to this: never early, at most this late.
    static let resolution: Duration = .milliseconds(10)

    private let slots = Mutex([Duration: [Resource]]())

    static func slot(for due: Duration) -> Duration {
        let (seconds, attoseconds) = due.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        let step: Int64 = 10_000_000  // the resolution, in nanoseconds
        return .nanoseconds(max(0, (nanoseconds + step - 1) / step) * step)
    }

    /// Adds `resource` to `slot`; true when the slot is new and needs a task to wake it.
    func add(_ resource: Resource, to slot: Duration) -> Bool {
        self.slots.withLock { slots in
            if slots[slot] != nil {
                slots[slot]!.append(resource)
                return false
            }
            slots[slot] = [resource]
            return true
        }
    }

    func take(_ slot: Duration) -> [Resource] {
        self.slots.withLock { $0.removeValue(forKey: slot) ?? [] }
    }
}
