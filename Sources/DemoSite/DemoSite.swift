import Hummingbird
import Logging
import NIOCore
import Synchronization

/// DemoSite is the small loopback web site `urlpoll demo` polls, and the bundled script that polls it.
///
/// Pages: `/healthy` (200), `/failing` (500), `/missing` (404), `/slow` (answers after 3 s, past the demo's
/// timeout), `/flapping` (up for 4 requests, then down for 4), `/redirect` (302 to `/healthy`),
/// `/status/CODE` (that status), `/loop` (redirects to itself), `/hang` (never answers), `/health.json?db=up|down&delay=MS` (a JSON health
/// document, after MS milliseconds) and `/ratelimited` (429 with `Retry-After: 42`).
public enum DemoSite {
    /// The bundled demo script (`scripts/demo.lua`).
    public static let script = String(decoding: PackageResources.demo_lua, as: UTF8.self)

    /// An application serving the demo pages on 127.0.0.1 at `port` (0 picks a free port). `onReady` is
    /// given the port once the server listens.
    public static func application(
        port: Int = 0, logger: Logger, onReady: @escaping @Sendable (Int) async -> Void
    ) -> some ApplicationProtocol {
        let flaps = Mutex(0)
        let router = Router()
        Self.route(router, "/health.json") { request, _ in
            let db = request.uri.queryParameters.get("db") ?? "up"
            if let delay = request.uri.queryParameters.get("delay", as: Int.self), delay > 0 {
                try await Task.sleep(for: .milliseconds(min(delay, 10_000)))
            }
            let body = #"{"status":"ok","version":"1.4.2","checks":{"db":"\#(db == "down" ? "down" : "up")"}}"#
            return .init(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        Self.route(router, "/ratelimited") { _, _ in
            .init(status: .tooManyRequests, headers: [.retryAfter: "42"])
        }
        Self.route(router, "/") { _, _ in
            .init(status: .ok, body: .init(byteBuffer: ByteBuffer(string: Self.index)))
        }
        Self.route(router, "/healthy") { _, _ in .init(status: .ok) }
        Self.route(router, "/failing") { _, _ in .init(status: .internalServerError) }
        Self.route(router, "/missing") { _, _ in .init(status: .notFound) }
        Self.route(router, "/redirect") { _, _ in .redirect(to: "/healthy") }
        Self.route(router, "/loop") { _, _ in .redirect(to: "/loop") }
        // The waits return (rather than throw) when the server stops, so shutdown with a request open is clean.
        Self.route(router, "/slow") { _, _ in
            try? await Task.sleep(for: .seconds(3))
            return .init(status: .ok)
        }
        Self.route(router, "/hang") { _, _ in
            try? await Task.sleep(for: .seconds(3600))
            return .init(status: .ok)
        }
        Self.route(router, "/flapping") { _, _ in
            let n = flaps.withLock { n in
                n += 1
                return n
            }
            return .init(status: (n - 1) % 8 < 4 ? .ok : .serviceUnavailable)
        }
        Self.route(router, "/status/{code}") { _, context in
            let code = context.parameters.get("code", as: Int.self) ?? 400
            return .init(status: .init(code: (100...599).contains(code) ? code : 400))
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "urlpoll-demo"),
            onServerRunning: { channel in await onReady(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    private static func route(
        _ router: Router<BasicRequestContext>, _ path: RouterPath,
        _ respond: @escaping @Sendable (Request, BasicRequestContext) async throws -> Response
    ) {
        router.get(path) { request, context in try await respond(request, context) }
        router.head(path) { request, context in try await respond(request, context) }
    }

    private static let index = """
        urlpoll demo site
        /healthy   200
        /failing   500
        /missing   404
        /slow      200 after 3 s
        /flapping  4 up, 4 down
        /redirect  302 to /healthy
        /health.json?db=up|down&delay=MS
        /ratelimited  429, Retry-After: 42

        """
}
