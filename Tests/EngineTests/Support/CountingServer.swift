import Hummingbird
import Logging
import Synchronization

/// CountingServer answers 200 to every request on loopback and counts them, so a test can tell whether
/// polling goes on.
final class CountingServer: Sendable {
    private let count = Mutex(0)

    /// Requests answered so far.
    var requests: Int { self.count.withLock { $0 } }

    /// Runs `body` with the server listening on a free port of `host`, a loopback address (127.0.0.0/8).
    func run(host: String = "127.0.0.1", _ body: @Sendable (_ base: String) async throws -> Void) async throws {
        let router = Router()
        router.on("/{path}", method: .head) { _, _ in
            self.count.withLock { $0 += 1 }
            return Response(status: .ok)
        }
        var logger = Logger(label: "counting-server")
        logger.logLevel = .critical
        try await withApplication(
            host: host,
            { onReady in
                Application(
                    router: router, configuration: .init(address: .hostname(host, port: 0)),
                    onServerRunning: { await onReady($0.localAddress?.port ?? 0) }, logger: logger)
            }, body)
    }
}
