import NIOCore
import Synchronization

/// InFlightLimit bounds the polls in flight (sent, their response not yet in): at most ``maximum`` in all,
/// and at most ``perHost`` per origin (scheme, host and port, RFC 6454), so one hung server cannot take
/// every slot. A poll waiting on the network holds a slot here, never a poller.
///
/// A Resource whose origin is at its limit is parked on that origin, holding nothing; the next poll of the
/// origin to end takes it. A Resource that finds every slot taken waits for one (the pool's back-pressure,
/// as the seed's pollers were).
final class InFlightLimit: Sendable {
    private struct Slots {
        var free: Int
        var byOrigin: [String: Int] = [:]
        var parked: [String: CircularBuffer<Resource>] = [:]
        var waiters = CircularBuffer<(id: UInt64, continuation: CheckedContinuation<Bool, Never>)>()
        var nextID: UInt64 = 0
    }

    /// Polls in flight in all.
    let maximum: Int
    /// Polls in flight per origin: at most half of ``maximum`` (when that is 2 or more), so one origin never
    /// takes every slot, however few the file descriptors allow.
    let perHost: Int
    private let slots: Mutex<Slots>

    init(maximum: Int, perHost: Int) {
        self.maximum = max(1, maximum)
        self.perHost = max(1, min(perHost, self.maximum / 2))
        self.slots = Mutex(Slots(free: self.maximum))
    }

    /// The defaults for `pollers`: as many polls in flight as the file descriptors allow (at most 1,024,
    /// or `pollers` when larger), and `pollers` per origin (at least 8, at most half the polls in flight).
    static func forPollers(_ pollers: Int, descriptors: DescriptorBudget = .current) -> InFlightLimit {
        InFlightLimit(maximum: descriptors.pollsInFlight(pollers: pollers), perHost: max(pollers, 8))
    }

    /// Polls parked on origins at their limit.
    var parkedCount: Int { self.slots.withLock { $0.parked.values.reduce(0) { $0 + $1.count } } }

    /// Takes a slot, waiting while all are taken; false when the task was cancelled first.
    func reserve() async -> Bool {
        if self.slots.withLock({ slots in
            guard slots.free > 0 else { return false }
            slots.free -= 1
            return true
        }) {
            return true
        }
        let id = self.slots.withLock { slots in
            slots.nextID += 1
            return slots.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Checked under the lock the cancellation handler takes, so a waiter is never left behind.
                let now: Bool? = self.slots.withLock { slots in
                    if Task.isCancelled { return false }
                    if slots.free > 0 {
                        slots.free -= 1
                        return true
                    }
                    slots.waiters.append((id, continuation))
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = self.slots.withLock { slots -> CheckedContinuation<Bool, Never>? in
                guard let index = slots.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return slots.waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: false)
        }
    }

    /// With a slot reserved, admits `resource` to its origin and returns it to be polled; or, when the
    /// origin is at its limit, parks it there, gives the slot back and returns nil.
    func admit(_ resource: Resource) -> Resource? {
        let origin = resource.target.origin
        let (admitted, handOff) = self.slots.withLock { slots -> (Bool, CheckedContinuation<Bool, Never>?) in
            if slots.byOrigin[origin, default: 0] < self.perHost {
                slots.byOrigin[origin, default: 0] += 1
                return (true, nil)
            }
            slots.parked[origin, default: []].append(resource)
            return (false, Self.release(&slots))
        }
        handOff?.resume(returning: true)
        return admitted ? resource : nil
    }

    /// Ends a poll of `target`: returns the origin's next parked Resource, which takes over the poll's
    /// slots, or nil after giving them back.
    func finish(_ target: Target) -> Resource? {
        let origin = target.origin
        let (next, handOff) = self.slots.withLock { slots -> (Resource?, CheckedContinuation<Bool, Never>?) in
            if let next = slots.parked[origin]?.popFirst() {
                if slots.parked[origin]?.isEmpty == true { slots.parked[origin] = nil }
                return (next, nil)
            }
            let count = slots.byOrigin[origin, default: 1] - 1
            slots.byOrigin[origin] = count > 0 ? count : nil
            return (nil, Self.release(&slots))
        }
        handOff?.resume(returning: true)
        return next
    }

    /// Gives a slot back: to the first waiter (returned, to be resumed outside the lock), or to the free count.
    private static func release(_ slots: inout Slots) -> CheckedContinuation<Bool, Never>? {
        if let waiter = slots.waiters.popFirst() { return waiter.continuation }
        slots.free += 1
        return nil
    }
}
