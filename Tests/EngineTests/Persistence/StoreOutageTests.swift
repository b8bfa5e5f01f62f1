import Logging
import Synchronization
import Testing

@testable import Engine

/// StoreOutage's words, on a time the test sets.
struct StoreOutageTests {
    final class Time: Sendable {
        let now = Mutex(ContinuousClock.now)
        func advance(by seconds: Double) { self.now.withLock { $0 = $0.advanced(by: .seconds(seconds)) } }
    }

    @Test func aRestartsDeadConnectionsFailingAfterTheFirstAnswer_areTheSameOutage_saidOnce() throws {
        let time = Time()
        let (logger, log) = RecordingLogHandler.make()
        let location = try PostgresLocation("postgresql://u@127.0.0.1:5432/db", environment: [:])
        let outage = StoreOutage(location: location, logger: logger, now: { time.now.withLock { $0 } })
        // Given: statements answered until 0 s; the server restarts.
        outage.answered()
        time.advance(by: 0.5)
        outage.failed("the server closed the connection")
        // When: it answers at 10 s, then a connection that died with it fails at 10.5 s, and statements are
        // answered from 11 s on, every half second.
        time.advance(by: 9.5)
        outage.answered()
        time.advance(by: 0.5)
        outage.failed("the connection is closed")
        for _ in 1...8 {
            time.advance(by: 0.5)
            outage.answered()
        }
        // Then: one error, and one "answers again" once answered for 3 s with no failure, counting from the
        // last statement answered before (0 s) to the first answered after the last failure (11 s).
        #expect(log.all.filter { $0.hasPrefix("error: ") }.count == 1, "\(log.all)")
        let back = log.all.filter { $0.contains("answers again") }
        #expect(back.count == 1, "\(log.all)")
        #expect(back.first?.contains("(after 11 s without it") == true, "\(log.all)")
    }
}
