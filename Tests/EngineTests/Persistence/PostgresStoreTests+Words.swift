import Foundation
import Testing

@testable import Engine

/// A re-test's fault F4: while PostgreSQL was frozen, a statement that needed a new connection (`/status/ID`'s
/// lookup) said "nothing that speaks PostgreSQL answered … is a server of another kind listening on that
/// port?": a frozen PostgreSQL's kernel still accepts connections, so the words must name it first.
extension PostgresStoreTests {
    @Test func aReadOnANewConnectionToAServerThatAcceptsAndNeverAnswers_namesAFrozenServerFirst() throws {
        // Given: a store whose server accepts connections and never answers (as a frozen postmaster's socket).
        let listener = try HangingListener()
        let location = try PostgresLocation(
            "postgresql://u@127.0.0.1:\(listener.port)/x?sslmode=disable", environment: [:])
        let store = PostgresStore(location: location, connections: 1, instance: "a", logger: Self.logger)
        let history = PostgresHistory(store: store)
        // When: the history's reader (a connection of its own, as `/status/ID` uses) looks the ids up.
        do {
            _ = try history.readURLIDs()
            Issue.record("a statement was answered by a server that never answers")
        } catch {
            // Then: the error names a stopped, frozen or overloaded server before a server of another kind.
            #expect(
                error.description.contains(
                    "cannot read the URLs' ids: no answer to PostgreSQL's start-up within 5 s (is the server stopped, frozen or overloaded"
                ),
                "\(error.description)")
        }
    }
}
