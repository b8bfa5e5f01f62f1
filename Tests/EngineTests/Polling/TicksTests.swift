import Synchronization
import Testing

@testable import Engine

/// A status interval's ticks on the ManualClock: what comes after a tick that is late.
@Suite(.timeLimit(.minutes(1))) struct TicksTests {
    @Test(arguments: [3.5, 13.5])
    func aLateTick_theNextComesAFullIntervalAfterIt_notInABurst(at late: Double) async throws {
        // Given: ticks every 2 s; the first falls due at 2 s.
        let clock = ManualClock()
        let missed = Mutex<[Int]>([])
        let ticking = Task {
            var ticks = Ticks(every: .seconds(2), clock: clock)
            for _ in 1...2 {
                guard let count = await ticks.next() else { return }
                missed.withLock { $0.append(count) }
            }
        }
        defer { ticking.cancel() }
        var sleeps = clock.sleeps.makeAsyncIterator()
        #expect(await sleeps.next() == .seconds(2))
        // When: it comes late (the tick before it, or the process, took that long).
        clock.advance(by: .seconds(late))
        // Then: it stands for the ticks it missed whole, and the next comes a full interval after it, not
        // the moment the old schedule says (0.5 s later): one report, not two in a row.
        #expect(await sleeps.next() == .seconds(2))
        #expect(missed.withLock { $0 } == [late > 4 ? 5 : 0])
    }

    @Test func aTickLateByLessThanHalfAnInterval_keepsTheSchedule() async throws {
        let clock = ManualClock()
        let ticking = Task {
            var ticks = Ticks(every: .seconds(2), clock: clock)
            for _ in 1...2 { _ = await ticks.next() }
        }
        defer { ticking.cancel() }
        var sleeps = clock.sleeps.makeAsyncIterator()
        #expect(await sleeps.next() == .seconds(2))
        clock.advance(by: .seconds(2.5))
        #expect(await sleeps.next() == .seconds(1.5))
    }
}
