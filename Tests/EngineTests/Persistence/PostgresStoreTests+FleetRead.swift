import Foundation
import Logging
import PostgresNIO
import Testing

@testable import Engine

/// Issue 15 (each instance's read of the fleet): after a full read, only the rows written since; and a
/// stopped instance's row stays gone.
extension PostgresStoreTests {
    /// Claims every due row of `store` at `now` and writes a poll of each back (`status`).
    static func pollAll(_ store: PostgresStore, status: String, at now: Double) async throws -> [Int64] {
        let claims = try await store.claim(limit: 100, scriptHash: "s", now: now)
        _ = try await store.complete(
            claims.map {
                .init(claim: $0, state: Self.state($0, status: status, health: .up, at: now), polled: true, delay: 60)
            }, now: now)
        return claims.map(\.id)
    }

    /// Waits (5 s at most) until `sql`'s one count is `expected` on `url`.
    static func until(_ url: String, _ sql: String, is expected: Int64) async throws -> Bool {
        for _ in 0..<500 {
            if try await TestPostgres.column(url, sql, as: Int64.self).first == expected { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test func fleetRead_afterAFullRead_returnsOnlyTheRowsWrittenSince() async throws {
        try await Self.withStores(1) { stores, _ in
            let store = stores[0]
            // Given: 10 URLs polled once, and a full read of them.
            _ = try await store.sync(Self.listings(10), scriptHash: "s", now: 1_000)
            let ids = try await Self.pollAll(store, status: "200 OK", at: 1_000)
            let full = try await store.fleet(since: nil)
            #expect(full.full)
            #expect(full.rows.count == 10)
            // When: nothing is written, the next read returns nothing.
            let none = try await store.fleet(since: full.horizon)
            #expect(!none.full)
            #expect(none.rows.isEmpty)
            // When: 2 of them are polled again.
            let two = try await store.claim(limit: 2, scriptHash: "s", now: 1_060)
            _ = try await store.complete(
                two.map {
                    .init(
                        claim: $0, state: Self.state($0, status: "404 Not Found", health: .down, at: 1_060),
                        polled: true, delay: 60)
                }, now: 1_060)
            // Then: the next read returns those 2 rows only, with their new states.
            let polled = try await store.fleet(since: none.horizon)
            #expect(!polled.full)
            #expect(polled.rows.map(\.id).sorted() == two.map(\.id).sorted())
            #expect(polled.rows.allSatisfy { $0.state?.status == "404 Not Found" })
            #expect(Set(two.map(\.id)).isSubset(of: Set(ids)))
        }
    }

    @Test func fleetRead_aWriteCommittedAfterAReadBegan_isSeenByTheNextRead() async throws {
        try await Self.withStores(1) { stores, url in
            let store = stores[0]
            _ = try await store.sync(Self.listings(3), scriptHash: "s", now: 1_000)
            let ids = try await Self.pollAll(store, status: "200 OK", at: 1_000)
            let first = try await store.fleet(since: nil)
            let location = try PostgresLocation(url, environment: [:])
            try await TestPostgres.withConnection(location) { writer in
                // Given: a write-back that began before a read and is not committed yet.
                try await writer.query("BEGIN", logger: Self.logger)
                try await writer.query(
                    "UPDATE urlpoll_targets SET status = '503 Service Unavailable', version = version + 1 WHERE id = \(ids[0])",
                    logger: Self.logger)
                let during = try await store.fleet(since: first.horizon)
                #expect(during.rows.allSatisfy { $0.state?.status != "503 Service Unavailable" })
                // When: it commits after that read.
                try await writer.query("COMMIT", logger: Self.logger)
                // Then: the next read returns it.
                let next = try await store.fleet(since: during.horizon)
                #expect(next.rows.contains { $0.id == ids[0] && $0.state?.status == "503 Service Unavailable" })
                var view = FleetView(fullReadEvery: 10)
                _ = view.merge(first)
                _ = view.merge(during)
                let (changed, _) = view.merge(next)
                #expect(changed.map(\.status) == ["503 Service Unavailable"])
                #expect(view.states[ids[0]]?.status == "503 Service Unavailable")
            }
        }
    }

    @Test func fleetRead_aRetiredURL_leavesTheMap() async throws {
        try await Self.withStores(1) { stores, _ in
            let store = stores[0]
            // Given: 3 URLs polled and read into the map.
            _ = try await store.sync(Self.listings(3), scriptHash: "s", now: 1_000)
            _ = try await Self.pollAll(store, status: "200 OK", at: 1_000)
            var view = FleetView(fullReadEvery: 10)
            _ = view.merge(try await store.fleet(since: view.since))
            #expect(view.states.count == 3)
            // When: a newer script lists only the first 2.
            _ = try await store.sync(Self.listings(2), scriptHash: "s2", now: 1_010)
            // Then: the next (delta) read takes the third out of the map.
            let since = try #require(view.since)
            let read = try await store.fleet(since: since)
            #expect(!read.full)
            let (_, gone) = view.merge(read)
            #expect(gone.map(\.name) == ["u3"])
            #expect(view.states.values.map(\.name).sorted() == ["u1", "u2"])
        }
    }

    @Test func fleetView_readsWhole_atStart_afterStartOver_andEveryNReads() async throws {
        try await Self.withStores(1) { stores, _ in
            let store = stores[0]
            _ = try await store.sync(Self.listings(2), scriptHash: "s", now: 1_000)
            _ = try await Self.pollAll(store, status: "200 OK", at: 1_000)
            var view = FleetView(fullReadEvery: 2)
            var kinds: [Bool] = []
            for n in 1...7 {
                if n == 6 { view.startOver() }
                let read = try await store.fleet(since: view.since)
                kinds.append(read.full)
                _ = view.merge(read)
            }
            // Full at the start, then 2 delta reads, full, 1 delta, full after the start over, 1 delta.
            #expect(kinds == [true, false, false, true, false, true, false])
            #expect(view.states.count == 2)
        }
    }

    @Test func monitor_forgetsTheStatesOfURLsThatLeftTheFleet_andKeepsTheOthers() async throws {
        // Given: a monitor holding the fleet's states of 2 URLs.
        let urls = ["http://127.0.0.1:1/1", "http://127.0.0.1:1/2"]
        let monitor = StateMonitor(urls: urls, reporter: RecordingReporter())
        await monitor.seed(
            urls.map { State(url: $0, name: $0, status: "200 OK", health: .up, polls: 1, since: 1, checkedAt: 1) })
        // When: the second one's row is retired (FleetView's `gone`).
        await monitor.forget([urls[1]])
        // Then: only the first one's state is left.
        #expect(await monitor.statesByURL().keys.sorted() == [urls[0]])
    }

    @Test func leave_aBeatHeldBehindALockWhenTheInstanceStops_doesNotBringItsRowBack() async throws {
        try await Self.withStores(1) { stores, url in
            let store = stores[0]
            _ = try await store.sync(Self.listings(1), scriptHash: "s", now: 10_000)
            let location = try PostgresLocation(url, environment: [:])
            try await TestPostgres.withConnection(location) { other in
                // Given: a long-silent instance's row, which a beat removes, locked by another session.
                try await other.query(
                    "INSERT INTO urlpoll_instances (id, host, pid, script_hash, started_at, heartbeat_at) VALUES ('old', 'h', 1, 's', 0, 0)",
                    logger: Self.logger)
                try await other.query("BEGIN", logger: Self.logger)
                try await other.query(
                    "SELECT 1 FROM urlpoll_instances WHERE id = 'old' FOR UPDATE", logger: Self.logger)
                // And a beat of this instance waiting for that lock when urlpoll stops (its task cancelled).
                let beat = Task { try await store.beat(scriptHash: "s", alive: 8, now: 10_000) }
                #expect(
                    try await Self.until(
                        url,
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'i1' AND wait_event_type = 'Lock'",
                        is: 1))
                beat.cancel()
                _ = await beat.result
                // When: the instance leaves, and then the lock is released.
                try await store.leave()
                try await other.query("COMMIT", logger: Self.logger)
                // Then: once no statement of the instance runs any more, its row is still gone.
                #expect(
                    try await Self.until(
                        url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'i1' AND state = 'active'",
                        is: 0))
                #expect(
                    try await TestPostgres.column(
                        url, "SELECT id FROM urlpoll_instances WHERE id = 'i1'", as: String.self
                    ).isEmpty)
            }
        }
    }
}
