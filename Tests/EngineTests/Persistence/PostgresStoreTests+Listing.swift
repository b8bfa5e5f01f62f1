import Foundation
import Logging
import PostgresNIO
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
