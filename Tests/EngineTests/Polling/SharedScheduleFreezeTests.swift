import Engine
import Foundation
import Logging
import Synchronization
import Testing

/// The shared schedule when PostgreSQL or an instance freezes (SIGSTOP) and thaws, restarts, or an instance
/// reloads: on a PostgreSQL server of each test's own (TestPostgres.Cluster), which it may stop and freeze.
extension SharedScheduleTests {
    /// A PostgreSQL server of the test's own, stopped at the end; nil (having said why) when there is none.
    static func ownPostgres(_ test: String = #function) async throws -> TestPostgres.Cluster? {
        guard TestPostgres.Cluster.binaries != nil else {
            try #require(
                ProcessInfo.processInfo.environment["CI"] == nil,
                "PostgreSQL is not installed (apt-get install -y postgresql); CI must run this test")
            print("skipping \(test): PostgreSQL is not installed")
            return nil
        }
        return try await TestPostgres.Cluster.start()
    }

    @Test func aClaimGivenUpWhilePostgresIsFrozen_leasesNothing_onceItThaws() async throws {
        guard let postgres = try await Self.ownPostgres() else { return }
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        // Given: 4 URLs polled every 10 s (timeout 5 s: a lease of 15 s) by one instance whose statements
        // are given up after 1 s.
        let server = try RecordingServer.keepAlive()
        let urls = (1...4).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 10), database: postgres.url) {
            cluster in
            let (logger, log) = RecordingLogHandler.make()
            _ = try cluster.start("a", logger: logger, statementTimeout: .seconds(1))
            try await cluster.settle(sleepers: 2)
            for _ in 1...9 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 2)
            }
            #expect(server.requests.count == 4)
            // When: PostgreSQL freezes as the URLs fall due (10 s): the claims sent meanwhile are given up
            // after their limit, and run when the server thaws.
            try await postgres.freeze()
            for _ in 1...3 {
                cluster.clock.advance(by: .seconds(1))
                #expect(
                    await eventually(within: .seconds(5)) {
                        log.all.contains { $0.contains("cannot claim due URLs: no answer within 1 s") }
                    })
                try await Task.sleep(for: .milliseconds(1_200))
            }
            try await postgres.thaw()
            // Then: every URL is polled again within one interval of falling due (by 20 s), not when the
            // leases the given-up claims took end (25 s).
            for _ in 1...7 {
                cluster.clock.advance(by: .seconds(1))
                _ = await eventually(within: .seconds(2)) { server.requests.count == 8 }
            }
            #expect(server.requests.count == 8, "\(log.all)")
            #expect(log.all.contains { $0.contains("leases that a claim given up") }, "\(log.all)")
        }
    }
}
