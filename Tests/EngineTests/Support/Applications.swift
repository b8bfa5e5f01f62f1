import DemoSite
import Foundation
import Hummingbird
import Logging

/// Runs `body` with the demo site listening on a free loopback port, and stops the site afterwards, on
/// both the success and the error path.
func withDemoSite(_ body: @Sendable (_ base: String) async throws -> Void) async throws {
    var logger = Logger(label: "demo-site")
    logger.logLevel = .critical
    try await withApplication({ onReady in DemoSite.application(logger: logger, onReady: onReady) }, body)
}

/// Runs `body` with the application `make` builds (given the callback that learns its port) listening on
/// loopback, and stops it afterwards, on both the success and the error path.
func withApplication<App: ApplicationProtocol>(
    _ make: (@escaping @Sendable (Int) async -> Void) -> App, _ body: @Sendable (_ base: String) async throws -> Void
) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = make { port in continuation.yield(port) }
        group.addTask { try await app.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        do {
            try await body("http://127.0.0.1:\(port)")
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
    }
}
