import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Receiver is a webhook receiver on loopback: `/hook` answers 200, `/fail` 500, and `/flaky` 500 twice then
/// 200; any path under `/api/` answers 200 (for providers with their own paths, such as Telegram's
/// `/bot<token>/sendMessage`). Every request is recorded, in arrival order, with its headers and query. (For a receiver that never answers, see
/// ``HangingListener``.)
final class Receiver: Sendable {
    struct Request: Sendable {
        let path: String
        let body: String
        let contentType: String?
        /// Header values by lower-case name (repeated headers joined with ", ").
        var headers: [String: String] = [:]
        /// The query string, without the "?".
        var query: String? = nil

        /// The body as a JSON object.
        var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(self.body.utf8))) as? [String: Any]
        }
    }

    private let requests = Mutex([Request]())
    let arrivals: AsyncStream<Request>
    private let continuation: AsyncStream<Request>.Continuation

    init() {
        (self.arrivals, self.continuation) = AsyncStream.makeStream()
    }

    var all: [Request] { self.requests.withLock { $0 } }

    private func record(_ request: Hummingbird.Request, path: String) async throws -> Request {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        var headers: [String: String] = [:]
        for field in request.headers {
            let name = field.name.canonicalName
            headers[name] = headers[name].map { $0 + ", " + field.value } ?? field.value
        }
        let recorded = Request(
            path: path, body: String(buffer: buffer), contentType: request.headers[.contentType], headers: headers,
            query: request.uri.query)
        self.requests.withLock { $0.append(recorded) }
        self.continuation.yield(recorded)
        return recorded
    }

    /// Runs `body` with the receiver listening on a free loopback port.
    func run(_ body: @Sendable (_ base: String) async throws -> Void) async throws {
        let router = Router()
        let flaky = Mutex(0)
        router.post("/hook") { request, _ in
            _ = try await self.record(request, path: "/hook")
            return Response(status: .ok)
        }
        router.post("/api/**") { request, _ in
            _ = try await self.record(request, path: request.uri.path)
            return Response(status: .ok)
        }
        router.post("/fail") { request, _ in
            _ = try await self.record(request, path: "/fail")
            return Response(status: .internalServerError)
        }
        router.post("/flaky") { request, _ in
            _ = try await self.record(request, path: "/flaky")
            let n = flaky.withLock { n in
                n += 1
                return n
            }
            return Response(status: n <= 2 ? .internalServerError : .ok)
        }
        var logger = Logger(label: "receiver")
        logger.logLevel = .critical
        try await withApplication(
            { onReady in
                Application(
                    router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                    onServerRunning: { await onReady($0.localAddress?.port ?? 0) }, logger: logger)
            }, body)
    }
}
