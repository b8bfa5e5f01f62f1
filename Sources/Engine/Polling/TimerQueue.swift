import HeapModule
import Synchronization

/// TimerQueue holds sleeping Resources by wake-up slot (10 ms wide), for the pool's one Sleep task. The
/// pool's loop adds; the Sleep task waits for the earliest slot (``earliest``, ``waitForEarlier(than:)``)
/// and takes its Resources, in the order they came.
///
/// Slots are kept as a dictionary of slot → Resources, and their keys in a min-heap (swift-collections'
/// `Heap`), so the Sleep finds the earliest slot in O(1) and adds or removes one in O(log slots), with one
/// task however many slots there are (a task per slot meant up to 60,000 tasks at a million URLs at 600 s).
final class TimerQueue: Sendable {
    /// Wake-ups are rounded up to this: never early, at most this late.
    static let resolution: Duration = .milliseconds(10)

    private struct Storage {
        var slots: [Duration: [Resource]] = [:]
        /// The keys of `slots`, earliest first.
        var order = Heap<Duration>()
        /// The Sleep, while it waits for a slot earlier than `alarm` (any slot, when nil).
        var waiter: CheckedContinuation<Void, Never>?
        var alarm: Duration?
    }

    private let storage = Mutex(Storage())

    static func slot(for due: Duration) -> Duration {
        let (seconds, attoseconds) = due.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        let step: Int64 = 10_000_000  // the resolution, in nanoseconds
        return .nanoseconds(max(0, (nanoseconds + step - 1) / step) * step)
    }

    /// Adds `resource` to `slot` (a multiple of ``resolution``, from the pool's start), and wakes the
    /// Sleep if it waits for a later slot or for none.
    ///
    /// A slot's array grows by half when full, not by doubling as `append` does: 100,000 URLs at 60 s put
    /// about 17 Resources in each 10 ms slot, and a doubled array would hold room for 32 (ResourceTests).
    func add(_ resource: Resource, to slot: Duration) {
        let waiter = self.storage.withLock { storage -> CheckedContinuation<Void, Never>? in
            if let index = storage.slots.index(forKey: slot) {
                storage.slots.values[index].appendGrowingByHalf(resource)
                return nil
            }
            var resources: [Resource] = []
            resources.reserveCapacity(1)
            resources.append(resource)
            storage.slots[slot] = resources
            storage.order.insert(slot)
            guard storage.alarm.map({ slot < $0 }) ?? true else { return nil }
            defer { storage.waiter = nil }
            return storage.waiter
        }
        waiter?.resume()
    }

    /// The earliest slot that holds Resources, if any.
    var earliest: Duration? { self.storage.withLock { $0.order.min } }

    /// Takes the earliest slot's Resources, in the order they came (none if the queue is empty).
    func takeEarliest() -> [Resource] {
        self.storage.withLock { storage in
            guard let slot = storage.order.popMin() else { return [] }
            return storage.slots.removeValue(forKey: slot) ?? []
        }
    }

    /// Waits until a slot earlier than `slot` is added (any slot, when `slot` is nil), or the task is
    /// cancelled. Returns at once if there is one already. One task waits at a time (the Sleep).
    func waitForEarlier(than slot: Duration?) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = self.storage.withLock { storage -> Bool in
                    if Task.isCancelled { return true }
                    if let earliest = storage.order.min, slot.map({ earliest < $0 }) ?? true { return true }
                    storage.waiter = continuation
                    storage.alarm = slot
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = self.storage.withLock { storage in
                defer { storage.waiter = nil }
                return storage.waiter
            }
            waiter?.resume()
        }
    }
}

extension Array {
    /// Appends, growing the storage by half of what it holds when it is full (amortized O(1), as doubling).
    fileprivate mutating func appendGrowingByHalf(_ element: Element) {
        if self.count == self.capacity { self.reserveCapacity(self.count + Swift.max(1, self.count / 2)) }
        self.append(element)
    }
}
