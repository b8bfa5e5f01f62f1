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

    /// Issue 15, N4: a reload's ticks go on from the pool before's, so the ticks that fell due between the
    /// two (PostgreSQL frozen while the reload listed its URLs) are counted as missed, not lost.
    @Test func ticksTakingOverFromEarlierOnes_countTheTicksMissedSinceTheirLast() async throws {
        let clock = ManualClock()
        let missed = Mutex<[Int]>([])
        // Given: ticks every 2 s whose last fell due at 0 s; 9 s pass before the ones that take over start.
        let previous = clock.now
        clock.advance(by: .seconds(9))
        let ticking = Task {
            var ticks = Ticks(every: .seconds(2), clock: clock, atOnce: true, after: previous)
            guard let count = await ticks.next() else { return }
            missed.withLock { $0.append(count) }
        }
        _ = await ticking.value
        // Then: their first tick, at once, is the one due at 2 s, 7 s late: it stands for the 3 missed after
        // it (due at 4, 6 and 8 s), as a late tick does; without earlier ticks it stands for none.
        #expect(missed.withLock { $0 } == [3])
        var fresh = Ticks(every: .seconds(2), clock: clock, atOnce: true)
        #expect(await fresh.next() == 0)
    }
}
