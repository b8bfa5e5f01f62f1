import DemoSite
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// Runs `body` with the demo site listening on a free loopback port, and stops the site afterwards, on
/// both the success and the error path.
func withDemoSite(_ body: @Sendable (_ base: String) async throws -> Void) async throws {
    var logger = Logger(label: "demo-site")
    logger.logLevel = .critical
    try await withApplication({ onReady in DemoSite.application(logger: logger, onReady: onReady) }, body)
}

/// Runs `body` with the application `make` builds (given the callback that learns its port) listening on
/// loopback (`host`, 127.0.0.1 unless the application listens on another 127.0.0.0/8 address), and stops it afterwards, on both the success and the error path.
///
/// The application is stopped by a graceful shutdown, never by cancelling its task: cancelling NIO's async
/// server while a connection is being accepted drops that connection's unfinished writer, which traps
/// ("Deinited NIOAsyncWriter without calling finish()", swift-nio#2637 and #2813). A graceful shutdown
/// closes the listening socket first and serves what was accepted.
func withApplication<App: ApplicationProtocol>(
    host: String = "127.0.0.1", _ make: (@escaping @Sendable (Int) async -> Void) -> App,
    _ body: @Sendable (_ base: String) async throws -> Void
) async throws {
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let app = make { port in continuation.yield(port) }
    var logger = Logger(label: "test-application")
    logger.logLevel = .critical
    let services = ServiceGroup(configuration: .init(services: [app], logger: logger))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await services.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        do {
            try await body("http://\(host):\(port)")
        } catch {
            await services.triggerGracefulShutdown()
            throw error
        }
        await services.triggerGracefulShutdown()
        try await group.waitForAll()
    }
}
