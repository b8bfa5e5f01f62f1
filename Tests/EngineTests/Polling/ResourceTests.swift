import CHeapStats
import Testing

@testable import Engine

/// 100,000 URLs at 60 s are mostly asleep: each Resource waits in the timer queue, so its size is the queue's.
@Suite(.timeLimit(.minutes(2))) struct ResourceTests {
    @Test func sleepingResources_takeUnder128HeapBytesEach() {
        // Given: 100,000 Targets, made before counting, as the loader makes them.
        let targets = (1...100_000).map { Target(url: "http://127.0.0.1:18480/s/\($0)") }
        // When: they sleep in a TimerQueue as at 100,000 URLs every 60 s: spread over 6,000 slots of 10 ms,
        // about 17 to a slot (the least of three tries: tests running beside this one allocate too).
        var queue = TimerQueue()
        var perResource = Int.max
        for _ in 1...3 {
            queue = TimerQueue()
            let before = Int(heap_bytes_in_use())
            for (i, target) in targets.enumerated() {
                var resource = Resource(target)
                resource.due = .milliseconds(10 * (i % 6_000))
                resource.lastSleep = .seconds(60)
                queue.add(resource, to: TimerQueue.slot(for: resource.due))
            }
            perResource = min(perResource, (Int(heap_bytes_in_use()) - before) / targets.count)
        }
        // Then: each takes its Resource's room in its slot and little more (it took 144 bytes for the Resource
        // alone, with each time a 16-byte `Duration`).
        #expect(MemoryLayout<Resource>.stride <= 96)
        #expect(perResource < 128, "\(perResource) bytes per sleeping Resource")
        #expect(queue.earliest == .zero)
        let slot = queue.takeEarliest()
        #expect(slot.count == 17)
        #expect(slot.first?.target.url == "http://127.0.0.1:18480/s/1")
        #expect(slot.first?.lastSleep == .seconds(60))
        #expect(slot.first?.due == .zero)
        #expect(queue.earliest == .milliseconds(10))
    }

    @Test func times_readAsSet() {
        var resource = Resource(Target(url: "http://h/"))
        #expect(resource.lastSleep == nil)
        #expect(resource.due == .zero)
        resource.lastSleep = .milliseconds(1_500)
        resource.due = .nanoseconds(61_000_000_001)
        resource.finished = .seconds(61)
        resource.lateness = .microseconds(250)
        #expect(resource.lastSleep == .milliseconds(1_500))
        #expect(resource.due == .nanoseconds(61_000_000_001))
        #expect(resource.finished == .seconds(61))
        #expect(resource.lateness == .microseconds(250))
        resource.lastSleep = nil
        #expect(resource.lastSleep == nil)
    }
}
