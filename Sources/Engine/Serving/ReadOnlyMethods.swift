import Hummingbird

/// ReadOnlyMethods answers a method other than GET and HEAD on one of the listener's paths with
/// `405 Method Not Allowed` and `Allow: GET, HEAD` (RFC 9110 §15.5.6, §10.2.1): nothing the listener serves is
/// writable. HEAD itself is answered by the router as GET without the body (RFC 9110 §9.3.2, Hummingbird's
/// `autoGenerateHeadEndpoints`). A path the listener does not serve is a 404 whatever the method, with a body
/// in words naming the paths it does serve (the router's own 404 has none).
struct ReadOnlyMethods<Context: RequestContext>: RouterMiddleware {
    /// Whether the listener serves `path` (a request target's path, without the query).
    let serves: @Sendable (_ path: String) -> Bool

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard self.serves(request.uri.path) else {
            let text =
                "nothing is at \(request.uri.path): the listener answers /, /status, /status/ID, /metrics, /healthz and /probe\n"
            // HEAD answers without the body (RFC 9110 §9.3.2).
            return Response(
                status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                body: request.method == .head ? .init() : .init(byteBuffer: ByteBuffer(string: text)))
        }
        guard request.method != .get, request.method != .head else {
            return try await next(request, context)
        }
        return Response(
            status: .methodNotAllowed,
            headers: [.allow: "GET, HEAD", .contentType: "text/plain; charset=utf-8"],
            body: .init(
                byteBuffer: ByteBuffer(
                    string: "\(request.method.rawValue) is not allowed here: the listener only answers GET and HEAD\n"))
        )
    }
}
