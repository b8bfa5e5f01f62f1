import Engine
import Testing

/// The fleet's history read from PostgreSQL (issue 15) against a real server (TestPostgres): what one
/// instance wrote, every instance reads, in the shapes a `--data` file answers; and retention.
@Suite(.serialized) struct PostgresHistoryTests {
    typealias Stores = PostgresStoreTests

    /// Polls the URL `n` (1-based) of `listings` on `store` at `at`, with `health`.
    static func poll(_ store: PostgresStore, at: Double, health: Health, latency: Double = 0.1) async throws -> Int64 {
        let claim = try #require(try await store.claim(limit: 1, scriptHash: "s", now: at).first)
        var state = Stores.state(
            claim, status: health == .down ? "refused" : "200 OK", health: health, at: at)
        state.latency = .seconds(latency)
        _ = try await store.complete(
            [.init(claim: claim, state: state, polled: true, delay: 0)], now: at)
        return claim.id
    }

    @Test func reads_showEveryInstancesPolls_changesAndUptime_asTheDataStoreDoes() async throws {
        try await Stores.withStores(2) { stores, _ in
            let (a, b) = (stores[0], stores[1])
            let (readA, readB) = (PostgresHistory(store: a), PostgresHistory(store: b))
            _ = try await a.sync(Stores.listings(1), scriptHash: "s", now: 3_600)
            // Given: A polls the URL up, B polls it down 2 minutes later, A up again an hour later.
            let id = try await Self.poll(a, at: 3_610, health: .up, latency: 0.2)
            _ = try await Self.poll(b, at: 3_730, health: .down)
            _ = try await Self.poll(a, at: 7_210, health: .up, latency: 0.4)
            let key = HistoryKey(url: "http://127.0.0.1:1/1")
            // When B reads (it polled one of the three): every poll and change counts, whoever wrote it.
            let minutes = try readB.summary(key: key, from: 3_600, to: 3_800, byMinute: true)
            #expect(minutes.rollup.polls == 2)
            #expect(minutes.rollup.failures == 1)
            #expect(minutes.rollup.latencyMax == 0.2)
            #expect(minutes.changes.map(\.toStatus) == ["200 OK", "refused"])
            let hours = try readA.summary(key: key, from: 3_600, to: 7_300, byMinute: false)
            #expect(hours.rollup.polls == 3)
            #expect(hours.rollup.uptime == 2.0 / 3.0)
            #expect(hours.changes.map(\.at) == [3_610, 3_730, 7_210])
            #expect(hours.changes.last?.from == .down)
            #expect(
                try readA.summary(key: HistoryKey(url: "http://x/"), from: 0, to: 9_999, byMinute: true).rollup.polls
                    == 0)
            let hourly = try readB.hourly(since: 3_600)
            #expect(hourly[key]?.map(\.start) == [3_600, 7_200])
            #expect(hourly[key]?.map(\.polls) == [2, 1])
            #expect(try readB.daily(since: 3_600)[key]?.map(\.polls) == [3])
            #expect(readB.urlIDs() == [key: id])
            #expect(readA.urlIDs() == [key: id])
            #expect(try readB.hourly(id: id, since: 7_200).map(\.polls) == [1])
            #expect(try readB.hourly(id: id + 99, since: 0).isEmpty)
        }
    }

    @Test func prune_dropsOldMinutesIntoHours_thenOldHoursAndChanges_inBatches_oneInstanceAtATime() async throws {
        try await Stores.withStores(2) { stores, url in
            let (a, b) = (stores[0], stores[1])
            let read = PostgresHistory(store: a)
            _ = try await a.sync(Stores.listings(1), scriptHash: "s", now: 0)
            // Given: 7 polls in the past, one per hour from hour 1 to hour 7, flapping up and down.
            for hour in 1...7 {
                _ = try await Self.poll(
                    hour.isMultiple(of: 2) ? a : b, at: Double(hour * 3_600 + 30),
                    health: hour.isMultiple(of: 2) ? .down : .up)
            }
            let key = HistoryKey(url: "http://127.0.0.1:1/1")
            // When: minutes before hour 5 and hours and changes before hour 3 are pruned, 2 rows a statement.
            let deleted = try await b.prune(before: (minutes: 5 * 3_600 + 1_800, hours: 3 * 3_600), batch: 2)
            // Then: minutes of hours 1–4 left the minute table; hours 3 and 4 kept them; hours 1–2 and their
            // changes are gone.
            #expect(deleted == 4 + 2)
            #expect(
                try await TestPostgres.column(url, "SELECT start FROM urlpoll_rollups ORDER BY start", as: Int64.self)
                    == [5, 6, 7].map { Int64($0 * 3_600) })
            #expect(try read.hourly(since: 0)[key]?.map(\.start) == [3, 4, 5, 6, 7].map { Int64($0 * 3_600) })
            #expect(try read.summary(key: key, from: 0, to: 30_000, byMinute: false).rollup.polls == 5)
            // And: by minute too, the hours whose minutes were pruned are counted from the hour rows (#14 fault 3).
            #expect(try read.summary(key: key, from: 0, to: 30_000, byMinute: true).rollup.polls == 5)
            #expect(try read.summary(key: key, from: 4 * 3_600 + 600, to: 30_000, byMinute: true).rollup.polls == 4)
            #expect(try read.latestChanges(limit: 10).map(\.at).min() == 3 * 3_600 + 30)
            #expect(try await a.prune(before: (minutes: 5 * 3_600 + 1_800, hours: 3 * 3_600)) == 0)
        }
    }

    /// Issue 15: PostgreSQL's rollups keep the latency sketch a `--data` file keeps, so `urlpoll.history`'s
    /// `latency_p95` and `/status`'s p50/p95 are there with `--store`: by minute and by hour, for one URL
    /// and for every URL, whichever instance polled, and after a prune moved the minutes into hours.
    @Test func reads_carryTheLatencySketch_p50AndP95AsTheDataStore_alsoAfterAPrune() async throws {
        try await Stores.withStores(2) { stores, _ in
            let (a, b) = (stores[0], stores[1])
            let read = PostgresHistory(store: b)
            _ = try await a.sync(Stores.listings(1), scriptHash: "s", now: 3_600)
            // Given: 20 polls in one hour, 10 a minute apart then 10 in one minute (merged in one rollup),
            // latencies 0.01 … 0.20 s; one down poll, whose latency never counts.
            var expected = Rollup(start: 3_600)
            for n in 1...20 {
                let at = 3_600 + (n <= 10 ? Double(n) * 60 : 660 + Double(n))
                _ = try await Self.poll(n.isMultiple(of: 2) ? a : b, at: at, health: .up, latency: Double(n) / 100)
                var state = State(url: "u", name: "u", ordinal: 1, status: "200 OK", health: .up)
                state.latency = .seconds(Double(n) / 100)
                expected.add(state)
            }
            _ = try await Self.poll(a, at: 3_600 + 900, health: .down, latency: 9)
            let key = HistoryKey(url: "http://127.0.0.1:1/1")
            let p50 = try #require(expected.sketch.quantile(0.5))
            let p95 = try #require(expected.sketch.quantile(0.95))
            for rollup in [
                try read.summary(key: key, from: 3_600, to: 7_199, byMinute: true).rollup,
                try read.summary(key: key, from: 3_600, to: 7_199, byMinute: false).rollup,
                try #require(try read.hourly(since: 3_600)[key]?.first),
                try #require(try read.hourly(id: read.urlIDs()[key] ?? 0, since: 3_600).first),
            ] {
                #expect(rollup.sketch == expected.sketch)
                #expect(rollup.sketch.quantile(0.5) == p50)
                #expect(rollup.sketch.quantile(0.95) == p95)
            }
            // When the minutes are pruned into an hour, the hour keeps the sketch.
            _ = try await a.prune(before: (minutes: 3 * 3_600, hours: 0), batch: 7)
            #expect(
                try read.summary(key: key, from: 3_600, to: 7_199, byMinute: false).rollup.sketch == expected.sketch)
            #expect(try read.hourly(since: 3_600)[key]?.first?.sketch == expected.sketch)
            #expect(try read.daily(since: 0)[key]?.first?.polls == 21)
        }
    }

    /// Issue 15: a prune run holds its lock from its first batch to its last (a session-level advisory lock,
    /// taken once), so no other instance's batches come between: each batch runs with it held.
    @Test func prune_holdsItsLockForTheWholeRun_notBatchByBatch() async throws {
        try await Stores.withStores(1) { stores, url in
            let store = stores[0]
            _ = try await store.sync(Stores.listings(1), scriptHash: "s", now: 0)
            for hour in 1...3 { _ = try await Self.poll(store, at: Double(hour * 3_600 + 30), health: .up) }
            // Each delete of minutes notes whether its session holds the prune lock as a session lock
            // (pg_advisory_unlock answers true only for one; it is taken again at once).
            for statement in [
                "CREATE TABLE prune_seen (session_lock boolean)",
                """
                CREATE FUNCTION prune_seen() RETURNS trigger LANGUAGE plpgsql AS $$
                DECLARE held boolean;
                BEGIN
                  held := pg_advisory_unlock(8462945879944096771);
                  IF held THEN PERFORM pg_advisory_lock(8462945879944096771); END IF;
                  INSERT INTO prune_seen VALUES (held);
                  RETURN NULL;
                END $$
                """,
                "CREATE TRIGGER prune_seen AFTER DELETE ON urlpoll_rollups FOR EACH STATEMENT EXECUTE FUNCTION prune_seen()",
            ] {
                _ = try await TestPostgres.column(url, statement, as: Int32.self)
            }
            #expect(try await store.prune(before: (minutes: 5 * 3_600, hours: 0), batch: 1) == 3)
            let seen = try await TestPostgres.column(url, "SELECT session_lock FROM prune_seen", as: Bool.self)
            #expect(seen.count >= 3)
            #expect(seen.allSatisfy { $0 }, "\(seen)")
            // And the lock is let go after the run: another prune runs.
            #expect(try await store.prune(before: (minutes: 5 * 3_600, hours: 0), batch: 1) == 0)
            #expect(
                try await TestPostgres.column(url, "SELECT count(*) FROM prune_seen", as: Int64.self) == [
                    Int64(seen.count + 1)
                ])
        }
    }
}
