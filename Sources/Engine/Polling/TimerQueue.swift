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
    ///
    /// A slot's array grows by half when full, not by doubling as `append` does: 100,000 URLs at 60 s put
    /// about 17 Resources in each 10 ms slot, and a doubled array would hold room for 32 (ResourceTests).
    func add(_ resource: Resource, to slot: Duration) -> Bool {
        self.slots.withLock { slots in
            if let index = slots.index(forKey: slot) {
                slots.values[index].appendGrowingByHalf(resource)
                return false
            }
            var resources: [Resource] = []
            resources.reserveCapacity(1)
            resources.append(resource)
            slots[slot] = resources
            return true
        }
    }

    func take(_ slot: Duration) -> [Resource] {
        self.slots.withLock { $0.removeValue(forKey: slot) ?? [] }
    }
}

extension Array {
    /// Appends, growing the storage by half of what it holds when it is full (amortized O(1), as doubling).
    fileprivate mutating func appendGrowingByHalf(_ element: Element) {
        if self.count == self.capacity { self.reserveCapacity(self.count + Swift.max(1, self.count / 2)) }
        self.append(element)
    }
}
