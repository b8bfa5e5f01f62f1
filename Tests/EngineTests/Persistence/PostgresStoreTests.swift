import Engine
import Foundation
import Logging
import PostgresNIO
import Testing

/// The shared schedule's store against a real PostgreSQL (TestPostgres): the schema, the URL list,
/// claiming with SKIP LOCKED, and the write-back that counts only for the instance holding the row.
@Suite(.serialized) struct PostgresStoreTests {
    static let logger = Logger(label: "tests") { _ in SwiftLogNoOpLogHandler() }

    /// Runs `body` with `count` stores (instances) on one fresh database, their pools running.
    static func withStores(
        _ count: Int, logger: Logger = Self.logger, test: String = #function,
        _ body: ([PostgresStore], String) async throws -> Void
    ) async throws {
        guard let url = try await TestPostgres.database(test) else { return }
        let location = try PostgresLocation(url, environment: [:])
        let stores = (1...count).map {
            PostgresStore(location: location, connections: 4, instance: "i\($0)", logger: logger)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for store in stores { group.addTask { await store.run() } }
            defer { group.cancelAll() }
            for store in stores { try await store.migrate() }
            try await body(stores, url)
        }
    }

    static func listings(_ n: Int, lease: Double = 20) -> [PostgresStore.Listing] {
        (1...n).map {
            PostgresStore.Listing(
                url: "http://127.0.0.1:1/\($0)", ordinal: 1, name: "u\($0)", definitionHash: "h\($0)",
                leaseSeconds: lease, offset: 0)
        }
    }

    static func state(_ claim: PostgresStore.Claim, status: String, health: Health, at: Double) -> State {
        State(
            url: claim.key.url, name: claim.key.url, ordinal: claim.key.ordinal, status: status, health: health,
            errorCount: health == .down ? 1 : 0, polls: (claim.state?.polls ?? 0) + 1, since: at, checkedAt: at)
    }

    @Test func migrate_createsTheSchema_twiceIsHarmless_andANewerOneIsRefusedInWords() async throws {
        try await Self.withStores(2) { stores, url in
            // Both migrated (one after the other under the lock); the version is this urlpoll's.
            #expect(
                try await TestPostgres.column(url, "SELECT version FROM urlpoll_schema", as: Int32.self) == [
                    Int32(PostgresStore.schemaVersion)
                ])
            _ = try await TestPostgres.column(url, "UPDATE urlpoll_schema SET version = 99 RETURNING 1", as: Int32.self)
            let error = await #expect(throws: HistoryError.self) { try await stores[0].migrate() }
            #expect(error?.description.contains("schema version 99, written by a newer urlpoll") == true)
            #expect(error?.description.contains("postgresql://postgres@") == true)
        }
    }

    @Test func claim_twoInstancesAtOnce_takeDisjointRows_andEachDueRowOnce() async throws {
        try await Self.withStores(3) { stores, _ in
            _ = try await stores[0].sync(Self.listings(30), scriptHash: "s", now: 1_000)
            let claims = try await withThrowingTaskGroup(of: [PostgresStore.Claim].self) { group in
                for store in stores {
                    group.addTask { try await store.claim(limit: 12, scriptHash: "s", now: 1_000) }
                }
                var all: [[PostgresStore.Claim]] = []
                for try await claimed in group { all.append(claimed) }
                return all
            }
            let ids = claims.flatMap { $0.map(\.id) }
            #expect(ids.count == 30)
            #expect(Set(ids).count == 30)
            // Nothing is due any more: every row is leased.
            #expect(try await stores[0].claim(limit: 100, scriptHash: "s", now: 1_000).isEmpty)
            // Not yet due rows are not claimed either.
            _ = try await stores[0].sync(
                Self.listings(31).map {
                    var listing = $0
                    listing.offset = 50
                    return listing
                }, scriptHash: "s", now: 1_000)
            #expect(try await stores[0].claim(limit: 100, scriptHash: "s", now: 1_010).isEmpty)
        }
    }

    @Test func complete_countsOnlyForTheInstanceStillHoldingTheRow_andOnceWhenRetried() async throws {
        try await Self.withStores(2) { stores, url in
            let (a, b) = (stores[0], stores[1])
            _ = try await a.sync(Self.listings(1, lease: 20), scriptHash: "s", now: 1_000)
            let held = try #require(try await a.claim(limit: 1, scriptHash: "s", now: 1_000).first)
            // A's poll outlives its lease: B claims the row and writes a change first.
            #expect(try await b.claim(limit: 1, scriptHash: "s", now: 1_015).isEmpty)
            let taken = try #require(try await b.claim(limit: 1, scriptHash: "s", now: 1_021).first)
            let bWon = try await b.complete(
                [
                    .init(
                        claim: taken, state: Self.state(taken, status: "200 OK", health: .up, at: 1_022), polled: true,
                        delay: 60)
                ],
                now: 1_022)
            #expect(bWon == [taken.id])
            // A's late result does not count: no change, no alert for it.
            let late = PostgresStore.Completion(
                claim: held, state: Self.state(held, status: "500 Internal Server Error", health: .down, at: 1_030),
                polled: true, delay: 60)
            #expect(try await a.complete([late], now: 1_030).isEmpty)
            #expect(
                try await TestPostgres.column(url, "SELECT status FROM urlpoll_targets", as: String.self) == ["200 OK"])
            // A write tried again after its reply was lost counts once: the same ids, one change row.
            let next = try #require(try await a.claim(limit: 1, scriptHash: "s", now: 1_100).first)
            let down = PostgresStore.Completion(
                claim: next, state: Self.state(next, status: "refused", health: .down, at: 1_101), polled: true,
                delay: 70)
            #expect(try await a.complete([down], now: 1_101) == [next.id])
            #expect(try await a.complete([down], now: 1_102) == [next.id])
            #expect(
                try await TestPostgres.column(
                    url, "SELECT to_status FROM urlpoll_changes ORDER BY version", as: String.self) == [
                        "200 OK", "refused",
                    ])
            #expect(
                try await TestPostgres.column(url, "SELECT due_at FROM urlpoll_targets", as: Double.self) == [1_171])
        }
    }

    /// Issue 14: the latest changes of all URLs together, newest first, from every instance's writes.
    @Test func latestChanges_areTheNewestOfAllURLs_newestFirst() async throws {
        try await Self.withStores(2) { stores, _ in
            let (a, b) = (stores[0], stores[1])
            _ = try await a.sync(Self.listings(3), scriptHash: "s", now: 1_000)
            // Given: each of the 3 URLs changes up, then down, then up again, instances taking turns.
            for round in 0..<3 {
                for (i, store) in [a, b, a].enumerated() {
                    let claim = try #require(
                        try await store.claim(limit: 1, scriptHash: "s", now: 1_000 + Double(round * 100 + i * 10))
                            .first)
                    let at = 1_001 + Double(round * 100 + i * 10)
                    let health: Health = round == 1 ? .down : .up
                    _ = try await store.complete(
                        [
                            .init(
                                claim: claim,
                                state: Self.state(
                                    claim, status: health == .up ? "200 OK" : "refused", health: health, at: at),
                                polled: true, delay: 0)
                        ], now: at)
                }
            }
            // When / Then: the latest 4 are the last round's 3 and the one before, newest first.
            let latest = try await b.latestChanges(limit: 4)
            #expect(latest.map(\.at) == [1_221, 1_211, 1_201, 1_121])
            #expect(latest.prefix(3).allSatisfy { $0.to == .up && $0.from == .down && $0.fromStatus == "refused" })
            #expect(latest.last?.to == .down)
            // The first round's first results, up, are no incidents: 6 of the 9 changes.
            #expect(try await a.latestChanges(limit: 50).count == 6)
        }
    }

    @Test func sync_anotherScript_retiresUnlistedURLs_andTheOlderScriptClaimsNothing() async throws {
        try await Self.withStores(2) { stores, url in
            let (a, b) = (stores[0], stores[1])
            #expect(try await a.sync(Self.listings(3), scriptHash: "old", now: 1_000) == nil)
            // B loads a newer script listing only the first two URLs.
            let previous = try await b.sync(Array(Self.listings(3).prefix(2)), scriptHash: "new", now: 1_001)
            #expect(previous?.scriptHash == "old")
            #expect(previous?.loadedBy == "i1")
            #expect(previous?.loadedAt == 1_000)
            #expect(
                try await TestPostgres.column(
                    url, "SELECT url FROM urlpoll_targets WHERE retired", as: String.self) == ["http://127.0.0.1:1/3"])
            // A, still on the old script, claims nothing, and is told which script the schedule follows.
            #expect(try await a.claim(limit: 10, scriptHash: "old", now: 1_002).isEmpty)
            #expect(try await a.nextDue(now: 1_002).scriptHash == "new")
            #expect(try await b.claim(limit: 10, scriptHash: "new", now: 1_002).count == 2)
        }
    }

    /// Fault 1 of the new-user test: an instance joining a running fleet died at start when its URL list
    /// and another instance's write-back locked the same rows in other orders (`deadlock detected`).
    @Test func sync_endedByADeadlockWithAWriteBack_isTriedAgain_andSaysSoInWords() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let location = try PostgresLocation(url, environment: [:])
        let (logger, box) = RecordingLogHandler.make()
        let store = PostgresStore(location: location, connections: 4, instance: "joining", logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            try await store.migrate()
            _ = try await store.sync(Self.listings(3), scriptHash: "s", now: 1_000)
            try await TestPostgres.withConnection(location) { other in
                // Another session taking the rows in another order than the list (an operator's psql, say: the
                // store's own statements all lock in id order): the last row first, then (below) the first,
                // which the list's transaction holds by then.
                // This session waits longer before it looks for a deadlock, so the list's is the one ended.
                try await other.query("SET deadlock_timeout = '20s'", logger: TestPostgres.logger)
                try await other.query("BEGIN", logger: TestPostgres.logger)
                try await other.query(
                    "SELECT id FROM urlpoll_targets WHERE url = 'http://127.0.0.1:1/3' FOR UPDATE",
                    logger: TestPostgres.logger)
                // The list changes every row's definition (a row listed as it is is not locked at all), so
                // the listing locks rows 1 to 3 in id order: it holds the first while it waits for the last.
                var changed = Self.listings(3)
                for index in changed.indices { changed[index].definition_hash += "-changed" }
                let sync = Task { [changed] in try await store.sync(changed, scriptHash: "s-changed", now: 1_001) }
                let waits = await eventually(within: .seconds(5)) {
                    let waiting = try? await TestPostgres.column(
                        url,
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'joining' AND wait_event_type = 'Lock'",
                        as: Int64.self)
                    return waiting == [1]
                }
                #expect(waits)
                try await other.query(
                    "SELECT id FROM urlpoll_targets WHERE url = 'http://127.0.0.1:1/1' FOR UPDATE",
                    logger: TestPostgres.logger)
                try await other.query("ROLLBACK", logger: TestPostgres.logger)
                _ = try await sync.value
            }
            #expect(
                box.all.contains {
                    $0.contains(
                        "could not list the script's URLs at once: PostgreSQL ended the transaction in a deadlock (SQLSTATE 40P01)"
                    )
                        && $0.contains("trying again in")
                })
            #expect(
                try await TestPostgres.column(
                    url, "SELECT loaded_at FROM urlpoll_schedule", as: Double.self) == [1_001])
        }
    }

    /// Fault 2 of the new-user test: instances under different roles. A role may end only its own sessions
    /// (or any, as a member of `pg_signal_backend`): an instance that may not end a frozen leader's session
    /// is told so in words, and does not claim it took report over.
    @Test func takeOver_ofAnotherRolesLeader_isRefusedInWords_untilItMayEndItsSession() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let suffix = UInt32.random(in: 0...UInt32.max)
        let (roleA, roleB) = ("fleet_a_\(suffix)", "fleet_b_\(suffix)")
        let server = try PostgresLocation(url, environment: [:])
        let setup = PostgresStore(location: server, connections: 2, instance: "setup", logger: Self.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await setup.run() }
            defer { group.cancelAll() }
            try await setup.migrate()
        }
        for role in [roleA, roleB] {
            for statement in [
                "CREATE ROLE \(role) LOGIN", "GRANT ALL ON ALL TABLES IN SCHEMA public TO \(role)",
                "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO \(role)",
            ] {
                _ = try await TestPostgres.column(url, statement, as: Int32.self)
            }
        }
        func store(_ role: String, _ name: String) throws -> PostgresStore {
            let location = try PostgresLocation(
                "postgresql://\(role)@\(server.host):\(server.port)/\(server.database)?sslmode=disable",
                environment: [:])
            return PostgresStore(location: location, connections: 2, instance: name, logger: Self.logger)
        }
        let (a, b) = (try store(roleA, "a"), try store(roleB, "b"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await a.run() }
            group.addTask { await b.run() }
            defer { group.cancelAll() }
            let leading = try await a.connectAlone()
            #expect(try await a.lead(on: leading))
            let taking = try await b.connectAlone()
            let leader = try #require(try await b.reportLeader(on: taking))
            #expect(leader.instance == "a")
            let refused = try await b.takeOver(from: leader, on: taking)
            #expect(
                refused
                    == .refused(
                        "cannot end the session of a, which holds the report lock: its role \(roleA) is not this instance's (\(roleB)), and PostgreSQL lets a role end only its own sessions; run every instance as one role, or GRANT pg_signal_backend TO \(roleB)"
                    ), "\(refused)")
            #expect(!leading.isClosed)
            // Allowed, it ends the leader's session and takes the lock.
            _ = try await TestPostgres.column(url, "GRANT pg_signal_backend TO \(roleB)", as: Int32.self)
            #expect(try await b.takeOver(from: leader, on: taking) == .taken)
            #expect(await eventually { leading.isClosed })
            await a.close(leading)
            await b.close(taking)
        }
    }

    @Test func location_refusesAMalformedHost_asABadURL_withoutResolvingIt() throws {
        for text in [
            "postgresql://up@[::1:55432/db", "postgresql://up@::1:55432/db", "postgresql://up@[::1]x/db",
            "postgresql://up@a]b:5432/db", "postgresql://up@[]:5432/db",
        ] {
            let refused = #expect(throws: HistoryError.self, "\(text)") { try PostgresLocation(text, environment: [:]) }
            #expect(refused?.description.contains("is not a host") == true, "\(refused?.description ?? "")")
            #expect(refused?.description.contains("[[") == false, "\(refused?.description ?? "")")
        }
        #expect(try PostgresLocation("postgresql://up@[::1]:55432/db", environment: [:]).host == "::1")
        #expect(try PostgresLocation("postgresql://up@[::1]/db", environment: [:]).port == 5432)
    }

    @Test func location_readsThePasswordFromTheEnvironmentOrPgpass_neverFromTheURL_andNeverPrintsIt() throws {
        let refused = #expect(throws: HistoryError.self) {
            try PostgresLocation("postgresql://u:secret@db:5433/x", environment: [:])
        }
        #expect(refused?.description.contains("secret") == false)
        #expect(refused?.description.contains("PGPASSWORD or ~/.pgpass") == true)
        let fromEnvironment = try PostgresLocation("postgresql://u@db:5433/x", environment: ["PGPASSWORD": "p1"])
        #expect(fromEnvironment.password == "p1")
        #expect(fromEnvironment.description == "postgresql://u@db:5433/x")
        let file = NSTemporaryDirectory() + "pgpass-\(UUID().uuidString)"
        try "# comment\nother:*:*:*:no\ndb:5433:x:u:p\\:2\n*:*:*:*:fallback\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        #expect(try PostgresLocation("postgresql://u@db:5433/x", environment: ["PGPASSFILE": file]).password == "p:2")
        #expect(try PostgresLocation("postgres://u@db/y", environment: ["PGPASSFILE": file]).password == "fallback")
        // A password file others can read is ignored, with a warning, as libpq does.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
        let open = try PostgresLocation("postgresql://u@db:5433/x", environment: ["PGPASSFILE": file])
        #expect(open.password == nil)
        #expect(
            open.passwordFileWarning
                == "the password file \(file) is ignored: it can be read by its group or others (mode 644); make it readable by its owner only (chmod 0600), as libpq asks"
        )
        let defaults = try PostgresLocation("postgresql://u@db", environment: [:])
        #expect(defaults.port == 5432 && defaults.database == "u" && defaults.tls == .prefer)
        #expect(throws: HistoryError.self) { try PostgresLocation("mysql://u@db/x", environment: [:]) }
        #expect(throws: HistoryError.self) {
            try PostgresLocation("postgresql://u@db/x?sslmode=maybe", environment: [:])
        }
    }
}

extension PostgresStoreTests {
    @Test func beat_removesTheRowsOfInstancesSilentForAnHour_andLeaveRemovesItsOwn() async throws {
        try await Self.withStores(2) { stores, url in
            let (a, b) = (stores[0], stores[1])
            _ = try await a.sync(Self.listings(2), scriptHash: "s", now: 1_000)
            _ = try await a.beat(scriptHash: "s", alive: 8, now: 1_000)
            // An hour and a second later, b beats: a's row, silent since, is removed.
            let later = 1_000 + PostgresStore.instanceRowLifetime.seconds + 1
            let following = try await b.beat(scriptHash: "s", alive: 8, now: later)
            #expect(try await TestPostgres.column(url, "SELECT id FROM urlpoll_instances", as: String.self) == ["i2"])
            #expect(following.schedule?.scriptHash == "s")
            #expect(following.followed)
            // b claims both URLs, then leaves: its row goes and its leases are released.
            #expect(try await b.claim(limit: 10, scriptHash: "s", now: later).count == 2)
            try await b.leave()
            #expect(try await TestPostgres.column(url, "SELECT id FROM urlpoll_instances", as: String.self).isEmpty)
            #expect(
                try await TestPostgres.column(
                    url, "SELECT count(*) FROM urlpoll_targets WHERE lease_owner IS NOT NULL", as: Int64.self) == [0])
        }
    }

    @Test func adopt_listsTheNewestLiveScript_onlyOnceNoLiveInstanceRunsTheOneFollowed() async throws {
        try await Self.withStores(2) { stores, url in
            let (a, b) = (stores[0], stores[1])
            // a runs "old" (2 URLs); b loads "new" (1 URL): the old script's second URL is retired.
            _ = try await a.sync(Self.listings(2), scriptHash: "old", now: 1_000)
            _ = try await b.sync(Array(Self.listings(2).prefix(1)), scriptHash: "new", now: 1_001)
            // While b beats, a adopts nothing.
            _ = try await b.beat(scriptHash: "new", alive: 8, now: 1_005)
            _ = try await a.beat(scriptHash: "old", alive: 8, now: 1_005)
            #expect(try await a.adopt(Self.listings(2), scriptHash: "old", alive: 8, now: 1_006) == nil)
            // b falls silent for longer than 8 s: a adopts, and the retired URL is listed again.
            _ = try await a.beat(scriptHash: "old", alive: 8, now: 1_014)
            let previous = try await a.adopt(Self.listings(2), scriptHash: "old", alive: 8, now: 1_014)
            #expect(previous?.scriptHash == "new")
            #expect(previous?.loadedBy == "i2")
            #expect(
                try await TestPostgres.column(url, "SELECT count(*) FROM urlpoll_targets WHERE retired", as: Int64.self)
                    == [0])
            #expect(try await a.claim(limit: 10, scriptHash: "old", now: 1_014).count == 2)
            // Adopting again changes nothing: the schedule follows a's script.
            #expect(try await a.adopt(Self.listings(2), scriptHash: "old", alive: 8, now: 1_015) == nil)
        }
    }
}

extension PostgresStoreTests {
    @Test func migrate_bringsAVersion1DatabaseToVersion2_addingWhenEachInstanceLoadedItsScript() async throws {
        try await Self.withStores(1) { stores, url in
            // A database as urlpoll's schema version 1 left it: no loaded_at (nor version 3's hour rollups).
            try await Self.undoVersion3(url)
            _ = try await TestPostgres.column(
                url, "ALTER TABLE urlpoll_instances DROP COLUMN loaded_at", as: Int32.self)
            _ = try await TestPostgres.column(url, "UPDATE urlpoll_schema SET version = 1 RETURNING 1", as: Int32.self)
            try await stores[0].migrate()
            #expect(
                try await TestPostgres.column(url, "SELECT version FROM urlpoll_schema", as: Int32.self) == [
                    Int32(PostgresStore.schemaVersion)
                ])
            _ = try await stores[0].sync(Self.listings(1), scriptHash: "s", now: 1_000)
            #expect(
                try await TestPostgres.column(url, "SELECT loaded_at FROM urlpoll_instances", as: Double.self) == [
                    1_000
                ])
        }
    }

    /// Takes a database back to schema version 3: no latency sketches in the rollups.
    static func undoVersion4(_ url: String) async throws {
        for statement in [
            "ALTER TABLE urlpoll_rollups DROP COLUMN sketch", "ALTER TABLE urlpoll_rollups_hour DROP COLUMN sketch",
            "ALTER TABLE urlpoll_schedule DROP COLUMN loaded_by_host, DROP COLUMN loaded_by_pid",
            "UPDATE urlpoll_schema SET version = 3",
        ] {
            _ = try await TestPostgres.column(url, statement, as: Int32.self)
        }
    }

    /// Takes a database back to schema version 2: no hour rollups, no indexes by time.
    static func undoVersion3(_ url: String) async throws {
        try await Self.undoVersion4(url)
        for statement in [
            "DROP TABLE urlpoll_rollups_hour", "DROP INDEX urlpoll_rollups_start", "DROP INDEX urlpoll_changes_at",
            "UPDATE urlpoll_schema SET version = 2",
        ] {
            _ = try await TestPostgres.column(url, statement, as: Int32.self)
        }
    }

    /// Issue 15: version 3 adds the hour rollups a prune sums old minutes into; a version 2 database keeps
    /// its minutes and changes, and they read as before.
    @Test func migrate_bringsAVersion2DatabaseToVersion3_keepingItsRollupsAndChanges() async throws {
        try await Self.withStores(1) { stores, url in
            _ = try await stores[0].sync(Self.listings(1), scriptHash: "s", now: 1_000)
            try await Self.undoVersion3(url)
            // A poll as urlpoll 2's write-back left it: a minute rollup and a change.
            let id = try #require(
                try await TestPostgres.column(url, "SELECT id FROM urlpoll_targets", as: Int64.self).first)
            for statement in [
                "INSERT INTO urlpoll_rollups (target_id, start, polls, failures, degraded, latency_sum, latency_max) VALUES (\(id), 960, 1, 0, 0, 0.1, 0.1) RETURNING 1",
                "INSERT INTO urlpoll_changes (target_id, version, at, to_state, to_status, instance) VALUES (\(id), 1, 1001, 'up', '200 OK', 'i1') RETURNING 1",
            ] {
                _ = try await TestPostgres.column(url, statement, as: Int32.self)
            }
            try await stores[0].migrate()
            #expect(
                try await TestPostgres.column(url, "SELECT version FROM urlpoll_schema", as: Int32.self) == [
                    Int32(PostgresStore.schemaVersion)
                ])
            let key = HistoryKey(url: "http://127.0.0.1:1/1")
            let history = PostgresHistory(store: stores[0])
            #expect(try history.hourly(since: 0)[key]?.map(\.polls) == [1])
            #expect(try history.summary(key: key, from: 0, to: 2_000, byMinute: false).changes.count == 1)
        }
    }
}

extension PostgresStoreTests {
    @Test func previousLoader_saysSinceWhenTheScriptIsFollowed_neverATimeStillToCome() {
        // Given: a script listed at 00:00:39.6 (a load, or an adoption, by the database's clock).
        let previous = PostgresStore.Previous(
            scriptHash: "s", loadedBy: "vm:1:ab", loadedAt: 39.6, host: "vm", pid: 1)
        // Then: the time is when the fleet began following it, cut to the second, not rounded up.
        #expect(
            previous.loader == "instance vm:1:ab (host vm, process 1), followed since 1970-01-01T00:00:39Z",
            "\(previous.loader)")
    }
}

extension PostgresStoreTests {
    /// Issue 15: version 4 adds the latency sketch to the rollups. A version 3 database is upgraded in place:
    /// its rollups are kept (their sketch empty: no percentile, the mean and maximum as before), and polls
    /// written after carry their latencies.
    @Test func migrate_bringsAVersion3DatabaseToVersion4_keepingItsRollups_andNewPollsCarryTheirLatency()
        async throws
    {
        try await Self.withStores(1) { stores, url in
            let store = stores[0]
            _ = try await store.sync(Self.listings(1), scriptHash: "s", now: 1_000)
            try await Self.undoVersion4(url)
            // Written by urlpoll 3's write-back: a rollup with no sketch column.
            let id = try #require(
                try await TestPostgres.column(url, "SELECT id FROM urlpoll_targets", as: Int64.self).first)
            _ = try await TestPostgres.column(
                url,
                "INSERT INTO urlpoll_rollups (target_id, start, polls, failures, degraded, latency_sum, latency_max) VALUES (\(id), 960, 1, 0, 0, 0.3, 0.3) RETURNING 1",
                as: Int32.self)
            try await store.migrate()
            #expect(
                try await TestPostgres.column(url, "SELECT version FROM urlpoll_schema", as: Int32.self) == [4])
            let key = HistoryKey(url: "http://127.0.0.1:1/1")
            let history = PostgresHistory(store: store)
            let old = try history.summary(key: key, from: 900, to: 1_000, byMinute: true).rollup
            #expect(old.polls == 1)
            #expect(old.latencyMax == 0.3)
            #expect(old.sketch.count == 0)
            _ = try await PostgresHistoryTests.poll(store, at: 1_001, health: .up, latency: 0.5)
            let both = try history.summary(key: key, from: 900, to: 1_100, byMinute: true).rollup
            #expect(both.polls == 2)
            #expect(both.sketch.count == 1)
            #expect(abs((both.sketch.quantile(0.95) ?? 0) - 0.5) < 0.5 * 0.02)
        }
    }
}

extension PostgresStoreTests {
    /// Issue 15: the instance that loaded the script is named with its host and process whether it runs,
    /// was killed, or stopped cleanly (its row gone).
    @Test func previous_namesTheLoadersHostAndProcess_afterItStoppedCleanly() async throws {
        try await Self.withStores(2) { stores, _ in
            let (a, b) = (stores[0], stores[1])
            _ = try await a.sync(Self.listings(1), scriptHash: "old", now: 1_000)
            try await a.leave()
            let previous = try #require(try await b.sync(Self.listings(1), scriptHash: "new", now: 1_010))
            #expect(previous.loadedBy == "i1")
            #expect(previous.host == ProcessInfo.processInfo.hostName)
            #expect(previous.pid == Int(ProcessInfo.processInfo.processIdentifier))
            #expect(
                previous.loader.hasPrefix(
                    "instance i1 (host \(ProcessInfo.processInfo.hostName), process \(ProcessInfo.processInfo.processIdentifier))"
                ))
        }
    }
}

extension PostgresStoreTests {
    /// Issue 15 (the first minute's lateness): an instance joining a fleet lists the same script; the rows it
    /// leaves as they are are neither rewritten nor locked, so the others' claims (which skip locked rows)
    /// and write-backs (which wait for them) go on during its sync.
    @Test func sync_ofTheSameURLs_neitherWritesNorLocksTheRowsItLeavesAsTheyAre() async throws {
        try await Self.withStores(2) { stores, url in
            let (a, b) = (stores[0], stores[1])
            _ = try await a.sync(Self.listings(3), scriptHash: "s", now: 1_000)
            let versions = "SELECT xmin::text || ':' || xmax::text FROM urlpoll_targets ORDER BY id"
            let before = try await TestPostgres.column(url, versions, as: String.self)
            // When B joins with the same URLs (its script differs elsewhere: a comment, say), and then with
            // one URL's definition changed.
            _ = try await b.sync(Self.listings(3), scriptHash: "s-commented", now: 1_010)
            #expect(try await TestPostgres.column(url, versions, as: String.self) == before)
            var changed = Self.listings(3)
            changed[1].definition_hash = "other"
            _ = try await b.sync(changed, scriptHash: "s2", now: 1_020)
            let after = try await TestPostgres.column(url, versions, as: String.self)
            #expect(after[0] == before[0])
            #expect(after[1] != before[1])
            #expect(after[2] == before[2])
            // The changed one falls due at once; the others keep their due times.
            #expect(
                try await TestPostgres.column(url, "SELECT due_at FROM urlpoll_targets ORDER BY id", as: Double.self)
                    == [1_000, 1_000, 1_000])
            #expect(
                try await TestPostgres.column(
                    url, "SELECT definition_hash FROM urlpoll_targets ORDER BY id", as: String.self) == [
                        "h1", "other", "h3",
                    ])
        }
    }
}

extension PostgresStoreTests {
    /// Issue 15 (lateness at a fleet's start): an instance joining a fleet that follows its very script (the
    /// same hash: the same text, arguments, settings and URL definitions) does not compare the rows with its
    /// list at all, which took about a second of PostgreSQL's CPU per instance at 100,000 URLs; it only
    /// records itself as the script's latest loader.
    @Test func sync_ofTheScriptTheScheduleFollows_comparesNoRow_andRecordsItsLoader() async throws {
        try await Self.withStores(2) { stores, url in
            let (a, b) = (stores[0], stores[1])
            _ = try await a.sync(Self.listings(3), scriptHash: "s", now: 1_000)
            // A list that differs under the same hash (which a real script cannot make) shows the rows are
            // not compared: nothing is retired.
            let previous = try await b.sync(Self.listings(2), scriptHash: "s", now: 1_010)
            #expect(previous?.scriptHash == "s")
            #expect(
                try await TestPostgres.column(
                    url, "SELECT count(*) FROM urlpoll_targets WHERE NOT retired", as: Int64.self) == [3])
            #expect(
                try await TestPostgres.column(url, "SELECT loaded_by FROM urlpoll_schedule", as: String.self)
                    == ["i2"])
        }
    }
}

/// Issue 15, F3: a clean stop releases every lease the instance holds and did not write back, also those
/// of a claim that answers after the stop began.
extension PostgresStoreTests {
    /// How many sessions wait for a lock while running a statement that contains `text`.
    static func waiting(_ url: String, _ text: String) async -> Int64? {
        try? await TestPostgres.column(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%\(text)%'",
            as: Int64.self
        ).first
    }

    @Test func leave_releasesTheLeasesOfAClaimThatAnswersAfterTheStopBegan() async throws {
        try await Self.withStores(1) { stores, url in
            let a = stores[0]
            _ = try await a.sync(Self.listings(2_000), scriptHash: "s", now: 1_000)
            _ = try await a.beat(scriptHash: "s", alive: 8, now: 1_000)
            let location = try PostgresLocation(url, environment: [:])
            try await TestPostgres.withConnection(location) { holder in
                // Given: the instance leaves, and another session's lock on its instance row holds its leave
                // up after the leave's statement began.
                for try await _ in try await holder.query("BEGIN", logger: Self.logger) {}
                for try await _ in try await holder.query(
                    "SELECT id FROM urlpoll_instances WHERE id = 'i1' FOR UPDATE", logger: Self.logger)
                {}
                let leaving = Task { try await a.leave(within: .seconds(20)) }
                try #require(
                    await eventually(within: .seconds(20)) {
                        await Self.waiting(url, "DELETE FROM urlpoll_instances") == 1
                    })
                // When: a claim of 1,000 rows answers meanwhile (one in flight as the stop began), and the
                // leave goes on.
                #expect(try await a.claim(limit: 1_000, scriptHash: "s", now: 2_000).count == 1_000)
                for try await _ in try await holder.query("COMMIT", logger: Self.logger) {}
                try await leaving.value
            }
            // Then: no row keeps a lease of the instance that left.
            #expect(
                try await TestPostgres.column(
                    url, "SELECT count(*) FROM urlpoll_targets WHERE lease_owner IS NOT NULL", as: Int64.self) == [0])
            #expect(try await TestPostgres.column(url, "SELECT count(*) FROM urlpoll_instances", as: Int64.self) == [0])
        }
    }
}

/// Issue 15, F5: a statement that waits for a lock another session holds (no `lock_timeout`) is given up at
/// its limit in words that name that cause too, not only a server that is down.
extension PostgresStoreTests {
    @Test func aStatementWaitingForAnotherSessionsLock_isGivenUp_inWordsThatNameTheLock() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let location = try PostgresLocation(url, environment: [:])
        let store = PostgresStore(
            location: location, connections: 2, instance: "i1", statementTimeout: .seconds(1), logger: Self.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            try await store.migrate()
            _ = try await store.sync(Self.listings(2), scriptHash: "s", now: 1_000)
            try await TestPostgres.withConnection(location) { holder in
                // Given: another session holds urlpoll_targets (a migration, VACUUM FULL, a DBA's transaction).
                for try await _ in try await holder.query("BEGIN", logger: Self.logger) {}
                for try await _ in try await holder.query(
                    "LOCK TABLE urlpoll_targets IN ACCESS EXCLUSIVE MODE", logger: Self.logger)
                {}
                // When: the instance claims; Then: given up at its limit, in words that name the lock.
                let error = await #expect(throws: HistoryError.self) {
                    try await store.claim(limit: 10, scriptHash: "s", now: 2_000)
                }
                #expect(
                    error?.description
                        == "\(location): cannot claim due URLs: no answer within 1 s (is the server up and reachable, or is the statement waiting for a lock another session holds?)"
                )
                for try await _ in try await holder.query("ROLLBACK", logger: Self.logger) {}
            }
        }
    }
}
