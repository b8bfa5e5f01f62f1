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
/// loopback, and stops it afterwards, on both the success and the error path.
func withApplication<App: ApplicationProtocol>(
    _ make: (@escaping @Sendable (Int) async -> Void) -> App, _ body: @Sendable (_ base: String) async throws -> Void
) async throws {
    try await withService(make, body)
}

/// Runs `body` with the service `make` builds (given the callback that learns its port) listening on
/// loopback, and stops it afterwards, on both the success and the error path.
///
/// The service is stopped by a graceful shutdown, never by cancelling its task: cancelling NIO's async
/// server while a connection is being accepted drops that connection's unfinished writer, which traps
/// ("Deinited NIOAsyncWriter without calling finish()", swift-nio#2637 and #2813). A graceful shutdown
/// closes the listening socket first and serves what was accepted.
func withService<S: Service>(
    _ make: (@escaping @Sendable (Int) async -> Void) -> S, _ body: @Sendable (_ base: String) async throws -> Void
) async throws {
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let service = make { port in continuation.yield(port) }
    var logger = Logger(label: "test-service")
    logger.logLevel = .critical
    let services = ServiceGroup(configuration: .init(services: [service], logger: logger))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await services.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        do {
            try await body("http://127.0.0.1:\(port)")
        } catch {
            await services.triggerGracefulShutdown()
            throw error
        }
        await services.triggerGracefulShutdown()
        try await group.waitForAll()
    }
}
