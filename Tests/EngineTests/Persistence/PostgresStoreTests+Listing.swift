import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import Engine

/// Issue 15 (instances started together): a listing waits for the one before it instead of giving up.
extension PostgresStoreTests {
    @Test func sync_waitingForAnotherInstancesListing_waitsPastTheStatementLimit_inProportionToItsURLs()
        async throws
    {
        guard let url = try await TestPostgres.database() else { return }
        let location = try PostgresLocation(url, environment: [:])
        // Given: a store whose statements are given up after 1 s, with 3,000 URLs to list (4 s in all).
        let store = PostgresStore(
            location: location, connections: 2, instance: "b", statementTimeout: .seconds(1), logger: Self.logger)
        #expect(store.listingLimit(3_000) == .seconds(4))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            try await store.migrate()
            try await TestPostgres.withConnection(location) { other in
                // And another instance's listing holds the listing lock for 2 s.
                try await other.query("BEGIN", logger: Self.logger)
                try await other.query(
                    "SELECT pg_advisory_xact_lock(\(PostgresStore.migrationLock))", logger: Self.logger)
                let release = Task {
                    try await Task.sleep(for: .seconds(2))
                    try await other.query("COMMIT", logger: Self.logger)
                }
                // When: this one lists its URLs meanwhile.
                let listings = (1...3_000).map {
                    PostgresStore.Listing(
                        url: "http://127.0.0.1:1/\($0)", ordinal: 1, name: "u\($0)", definitionHash: "h",
                        leaseSeconds: 15, offset: 0)
                }
                // Then: it waits for it, and lists them, rather than giving up after its 1 s.
                _ = try await store.sync(listings, scriptHash: "s", now: 1_000)
                try await release.value
            }
            #expect(
                try await TestPostgres.column(url, "SELECT count(*) FROM urlpoll_targets", as: Int64.self) == [3_000])
        }
    }
}

/// Issue 15, item 2: a statement whose rows urlpoll never read lost its error: postgres-nio hands a
/// statement's rows, and an error PostgreSQL meets while running it, to the row sequence `query` returns.
extension PostgresStoreTests {
    @Test func sync_whoseListingLockIsGivenUp_saysWhy_notThatTheTransactionWasAborted() async throws {
        guard let url = try await TestPostgres.database() else { return }
        let location = try PostgresLocation(url, environment: [:])
        // Given: a database whose sessions give up waiting for a lock after 200 ms, and another session that
        // holds the listing lock.
        _ = try await TestPostgres.withConnection(location) { connection in
            try await connection.query(
                PostgresQuery(unsafeSQL: "ALTER DATABASE \(location.database) SET lock_timeout = '200ms'"),
                logger: Self.logger)
        }
        let store = PostgresStore(location: location, connections: 2, instance: "a", logger: Self.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            try await store.migrate()
            try await TestPostgres.withConnection(location) { other in
                // (Its rows read: the lock is taken once the statement has run, not when `query` returns.)
                for try await _ in try await other.query(
                    "SELECT pg_advisory_lock(\(PostgresStore.migrationLock))", logger: Self.logger)
                {}
                // When: this instance lists its URLs meanwhile.
                let listing = PostgresStore.Listing(
                    url: "http://127.0.0.1:1/", ordinal: 1, name: "u", definitionHash: "h", leaseSeconds: 15,
                    offset: 0)
                do {
                    _ = try await store.sync([listing], scriptHash: "s", now: 1_000)
                    Issue.record("the listing worked while another session held its lock")
                } catch let error as HistoryError {
                    // Then: the error says why the lock was not had, in PostgreSQL's words, not the next
                    // statement's "current transaction is aborted".
                    #expect(error.description.contains("lock timeout"), "\(error.description)")
                    #expect(!error.description.contains("aborted"), "\(error.description)")
                }
            }
        }
    }
}

/// Issue 15 (a fleet's first seconds): the rows a listing makes due while it is still under way are not all
/// overdue at once when it commits.
extension PostgresStoreTests {
    /// The time a listing reads, set by the test while the listing waits.
    final class ListingClock: Sendable {
        let seconds = Mutex(1_000.0)
        var now: Double { self.seconds.withLock { $0 } }
    }

    @Test func sync_thatTakesLong_spreadsTheRowsDueMeanwhile_overWhatIsLeftOfTheFirstPass() async throws {
        try await Self.withStores(1) { stores, url in
            let store = stores[0]
            // Given: 10 URLs to list, the first due at once and one more each second (offsets 0…9 s), URL 1
            // listed already with another definition.
            let listings = Self.listings(10).enumerated().map { i, listing in
                var listing = listing
                listing.offset = Double(i)
                return listing
            }
            var old = listings[0]
            old.definition_hash = "old"
            _ = try await store.sync([old], scriptHash: "old", now: 1_000)
            let clock = ListingClock()
            try await TestPostgres.withConnection(try PostgresLocation(url, environment: [:])) { other in
                // And another session holds URL 1's row, so the listing, started at 1,000 s, waits in its
                // statement.
                try await other.query("BEGIN", logger: Self.logger)
                try await other.query("SELECT id FROM urlpoll_targets FOR UPDATE", logger: Self.logger)
                let sync = Task { try await store.sync(listings, scriptHash: "new", now: clock.now) }
                let waiting = await eventually(within: .seconds(10)) {
                    let waits = try? await TestPostgres.column(
                        url,
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
                        as: Int64.self)
                    return waits == [1]
                }
                #expect(waiting)
                // When: it ends 3.5 s later, past the due times of URLs 1 to 4.
                clock.seconds.withLock { $0 = 1_003.5 }
                try await other.query("COMMIT", logger: Self.logger)
                _ = try await sync.value
            }
            // Then: no row is due before the listing ended; the 4 rows due meanwhile are spread evenly over
            // what is left of the first pass (1,003.5 to 1,009 s), in their order; the others keep theirs.
            let due = try await TestPostgres.column(
                url, "SELECT due_at FROM urlpoll_targets ORDER BY ordinal, substring(url from '[0-9]+$')::int",
                as: Double.self)
            #expect(due == [1_003.5, 1_004.875, 1_006.25, 1_007.625, 1_004, 1_005, 1_006, 1_007, 1_008, 1_009])
        }
    }
}
