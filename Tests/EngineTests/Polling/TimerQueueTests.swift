import Testing

@testable import Engine

/// The Sleep's queue: slots in time order, each slot's Resources in the order they came, and the wait that
/// an earlier slot ends.
@Suite(.timeLimit(.minutes(1))) struct TimerQueueTests {
    static func resource(_ name: String, due: Duration) -> Resource {
        var resource = Resource(Target(url: "http://127.0.0.1:9/\(name)"))
        resource.due = due
        return resource
    }

    @Test func takeEarliest_givesSlotsInTimeOrder_eachInTheOrderItsResourcesCame() {
        // Given: Resources added out of time order, three of them in one slot.
        let queue = TimerQueue()
        for (name, due) in [("c1", 30), ("a1", 10), ("c2", 25), ("b", 20), ("a2", 5), ("c3", 21)] {
            queue.add(
                Self.resource(name, due: .milliseconds(due)), to: TimerQueue.slot(for: .milliseconds(due)))
        }
        // Then: 10 ms (a1, a2), 20 ms (b), 30 ms (c1, c2, c3): rounded up, never early.
        var taken: [[String]] = []
        while queue.earliest != nil { taken.append(queue.takeEarliest().map { String($0.target.url.suffix(2)) }) }
        #expect(taken == [["a1", "a2"], ["/b"], ["c1", "c2", "c3"]])
        #expect(queue.takeEarliest().isEmpty)
    }

    @Test func slot_roundsUpToTheResolution() {
        #expect(TimerQueue.slot(for: .zero) == .zero)
        #expect(TimerQueue.slot(for: .nanoseconds(1)) == .milliseconds(10))
        #expect(TimerQueue.slot(for: .milliseconds(10)) == .milliseconds(10))
        #expect(TimerQueue.slot(for: .seconds(60) + .nanoseconds(1)) == .seconds(60) + .milliseconds(10))
    }

    @Test func waitForEarlier_endsWhenAnEarlierSlotIsAdded_notALaterOne() async {
        // Given: a queue with a slot at 100 ms, and a waiter for anything earlier.
        let queue = TimerQueue()
        queue.add(Self.resource("late", due: .milliseconds(100)), to: .milliseconds(100))
        let (ended, end) = AsyncStream<Void>.makeStream()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await queue.waitForEarlier(than: .milliseconds(100))
                end.yield()
            }
            // When: a later slot, then an earlier one, is added.
            queue.add(Self.resource("later", due: .milliseconds(200)), to: .milliseconds(200))
            queue.add(Self.resource("early", due: .milliseconds(50)), to: .milliseconds(50))
            // Then: the wait ends (the test's time limit catches it if not), and the earlier slot is first.
            var iterator = ended.makeAsyncIterator()
            await iterator.next()
            #expect(queue.earliest == .milliseconds(50))
        }
    }

    @Test func waitForEarlier_endsWhenCancelled() async {
        let queue = TimerQueue()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await queue.waitForEarlier(than: nil) }
            group.cancelAll()
            await group.waitForAll()
        }
        #expect(queue.earliest == nil)
    }
}
