import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// HookServer is what hooks call with `urlpoll.http` in tests, on loopback:
/// - `/json` answers `{"status":"ok"}`;
/// - `/slow` answers only once the test opens its gate (``release()``), and says on ``arrivals`` that a request
///   is waiting there;
/// - `/echo` answers with the request's method, `Cookie` and `Authorization` headers and body, as JSON;
/// - `/login` (POST, form `user=alice&password=s3cret`) sets the cookie `sid` and answers `{"token": …}`,
///   else 403; `/api/orders` answers 200 `{"orders": 3}` only with that cookie and `Authorization: Bearer`
///   that token, else 401: a login flow it enforces.
/// - `/redirect-login` sets a cookie and redirects (302) to `/echo`.
final class HookServer: Sendable {
    static let token = "t0k3n-42"
    private let gate = Mutex<[CheckedContinuation<Void, Never>]?>([])
    private let requests = Mutex([String]())
    /// `METHOD /path?query body` of every request to `/echo`, in arrival order.
    var seen: [String] { self.requests.withLock { $0 } }
    let arrivals: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation

    init() {
        (self.arrivals, self.continuation) = AsyncStream.makeStream()
    }

    /// Lets every request waiting on `/slow` (and every later one) be answered.
    func release() {
        let waiting = self.gate.withLock { gate in
            defer { gate = nil }
            return gate ?? []
        }
        for continuation in waiting { continuation.resume() }
    }

    private func waitAtGate() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let open = self.gate.withLock { gate -> Bool in
                guard gate != nil else { return true }
                gate!.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    func run(_ body: @Sendable (_ base: String) async throws -> Void) async throws {
        let router = Router()
        router.get("/json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        router.get("/slow") { _, _ in
            self.continuation.yield("/slow")
            await self.waitAtGate()
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "finally")))
        }
        router.on("/echo", method: .get) { request, _ in try await self.echo(request) }
        router.on("/echo", method: .post) { request, _ in try await self.echo(request) }
        router.post("/login") { request, _ in
            let form = String(buffer: try await request.body.collect(upTo: 1 << 16))
            guard request.headers[.contentType] == "application/x-www-form-urlencoded",
                Set(form.split(separator: "&")) == ["user=alice", "password=s3cret%21"]
            else { return Response(status: .forbidden) }
            return Response(
                status: .ok,
                headers: [.contentType: "application/json", .setCookie: "sid=abc123; Path=/; HttpOnly"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"token":"\#(Self.token)"}"#)))
        }
        router.get("/api/orders") { request, _ in
            guard request.headers[.cookie] == "sid=abc123",
                request.headers[.authorization] == "Bearer \(Self.token)"
            else { return Response(status: .unauthorized) }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"orders":3}"#)))
        }
        router.get("/redirect-login") { _, _ in
            Response(status: .found, headers: [.location: "/echo", .setCookie: "hop=1; Path=/"])
        }
        var logger = Logger(label: "hook-server")
        logger.logLevel = .critical
        try await withApplication(
            { onReady in
                Application(
                    router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                    onServerRunning: { await onReady($0.localAddress?.port ?? 0) }, logger: logger)
            },
            { base in
                // Requests still at the gate are answered before the server shuts down gracefully.
                defer { self.release() }
                try await body(base)
            })
    }

    private func echo(_ request: Request) async throws -> Response {
        let body = String(buffer: try await request.body.collect(upTo: 1 << 16))
        let line = "\(request.method.rawValue) \(request.uri)" + (body.isEmpty ? "" : " " + body)
        self.requests.withLock { $0.append(line) }
        let fields: [String: String] = [
            "method": request.method.rawValue, "cookie": request.headers[.cookie] ?? "",
            "authorization": request.headers[.authorization] ?? "", "body": body,
        ]
        let json = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }
}
