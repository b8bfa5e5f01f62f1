import Engine
import Foundation
import Logging
import PostgresNIO
import Testing

/// Issue 15: multi-row updates of the schedule take their rows in one order (by id), so two of them never
/// wait for each other's rows; a deadlock with another session all the same is tried again after a jittered wait, in words.
extension PostgresStoreTests {
    /// The backends of `url`'s database waiting for a lock now.
    static func waitingForALock(_ url: String) async throws -> Int64 {
        try await TestPostgres.column(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            as: Int64.self
        ).first ?? 0
    }

    /// Two claimed rows of a fresh schedule, lower id first, and a write-back of each.
    static func twoClaimed(_ store: PostgresStore) async throws -> [PostgresStore.Completion] {
        _ = try await store.sync(Self.listings(2), scriptHash: "s", now: 1_000)
        let claims = try await store.claim(limit: 2, scriptHash: "s", now: 1_000).sorted { $0.id < $1.id }
        try #require(claims.count == 2)
        return claims.map {
            PostgresStore.Completion(
                claim: $0, state: Self.state($0, status: "200 OK", health: .up, at: 1_001), polled: true, delay: 60)
        }
    }

    @Test func complete_takesItsRowsInIdOrder_neverHoldingOneWhileItWaitsForALowerOne() async throws {
        try await Self.withStores(1) { stores, url in
            let store = stores[0]
            let written = try await Self.twoClaimed(store)
            let (low, high) = (written[0].claim.id, written[1].claim.id)
            try await TestPostgres.withConnection(try PostgresLocation(url, environment: [:])) { other in
                // Given: another session holds the lower row.
                try await other.query("SET lock_timeout = '10s'", logger: Self.logger)
                try await other.query("BEGIN", logger: Self.logger)
                try await other.query(
                    "SELECT id FROM urlpoll_targets WHERE id = \(low) FOR UPDATE", logger: Self.logger)
                // When: a write-back of both rows, the higher one listed first, waits for the lower one.
                let write = Task { try await store.complete([written[1], written[0]], now: 1_001) }
                #expect(await eventually(checking: { (try? await Self.waitingForALock(url)) == 1 }))
                // Then: it holds nothing while it waits: the other session takes the higher row at once.
                do {
                    let rows = try await other.query(
                        "SELECT id FROM urlpoll_targets WHERE id = \(high) FOR UPDATE NOWAIT", logger: Self.logger)
                    var taken: [Int64] = []
                    for try await id in rows.decode(Int64.self) { taken.append(id) }
                    #expect(taken == [high])
                } catch {
                    Issue.record(
                        "the write-back held the higher row while it waited for the lower one: \(String(reflecting: error))"
                    )
                }
                try await other.query("ROLLBACK", logger: Self.logger)
                // And the write-back goes through once the lower row is free.
                #expect(try await write.value == [low, high])
            }
        }
    }

    @Test func complete_endedByADeadlockWithAnotherSession_isTriedAgain_andSaysSoInWords() async throws {
        let (logger, log) = RecordingLogHandler.make()
        try await Self.withStores(1, logger: logger) { stores, url in
            let store = stores[0]
            let written = try await Self.twoClaimed(store)
            let (low, high) = (written[0].claim.id, written[1].claim.id)
            try await TestPostgres.withConnection(try PostgresLocation(url, environment: [:])) { other in
                // Given: another session (an operator's psql, say) holds the higher row; it detects deadlocks
                // after the write-back does, so the write-back is the one PostgreSQL ends.
                try await other.query("SET deadlock_timeout = '20s'", logger: Self.logger)
                try await other.query("SET lock_timeout = '10s'", logger: Self.logger)
                try await other.query("BEGIN", logger: Self.logger)
                try await other.query(
                    "SELECT id FROM urlpoll_targets WHERE id = \(high) FOR UPDATE", logger: Self.logger)
                let write = Task { try await store.complete(written, now: 1_001) }
                #expect(await eventually(checking: { (try? await Self.waitingForALock(url)) == 1 }))
                // When: that session asks for the lower row, which the write-back holds: a deadlock.
                try await other.query(
                    "SELECT id FROM urlpoll_targets WHERE id = \(low) FOR UPDATE", logger: Self.logger)
                try await other.query("COMMIT", logger: Self.logger)
                // Then: the write-back, ended by PostgreSQL (SQLSTATE 40P01), is tried again after a jittered wait (by
                // which the other session has its rows) and counts.
                #expect(try await write.value == [low, high])
            }
            let said = log.all.filter { $0.contains("deadlock") }
            #expect(said.count == 1, "\(log.all)")
            #expect(said.first?.hasPrefix("notice: ") == true)
            #expect(said.first?.contains("could not write back polls at once") == true)
            #expect(said.first?.contains("SQLSTATE 40P01") == true)
            #expect(said.first?.contains("trying again") == true)
            #expect(
                try await TestPostgres.column(url, "SELECT status FROM urlpoll_targets ORDER BY id", as: String.self)
                    == ["200 OK", "200 OK"])
        }
    }
}
