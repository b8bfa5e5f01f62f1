import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// HookHTTPClient sends the requests hooks make with `urlpoll.http`, on AsyncHTTPClient, off the Lua
/// state: the hook's coroutine waits while it runs, and ``ScriptHost`` resumes it with the outcome.
///
/// Redirects (301, 302, 303, 307, 308) are followed here, one hop at a time, with the rules the prober
/// uses (``HTTPProber/redirect(_:method:code:location:_:)``: net/http's and curl's method rewriting, no
/// credentials to another host), so that a session stores the cookies of every hop (RFC 6265 §5.3) and
/// sends each hop its own.
struct HookHTTPClient: Sendable {
    /// The most content read from a response; the rest is not read (1 MiB, as a `check`'s poll).
    static let maximumBodySize = 1 << 20

    let client: HTTPClient
    let userAgent: String

    /// The client every script host uses unless given another: its own connections (never a poll's or an
    /// alert's), AsyncHTTPClient's redirect following off, on NIO's shared event loops. Like
    /// AsyncHTTPClient's `HTTPClient.shared` it lives as long as the process and is never shut down.
    static let shared: HookHTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(30), read: nil))
        configuration.connectionPool = .init(idleTimeout: .seconds(50), concurrentHTTP1ConnectionsPerHostSoftLimit: 8)
        // TLS 1.2 and 1.3 only, as polls (RFC 8996); swift-nio-ssl's default minimum is TLS 1.0.
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        configuration.tlsConfiguration = tls
        // One connection attempt per request: a refused server is told to the hook at once, as what it is.
        configuration.connectionPool.retryConnectionEstablishment = false
        return HookHTTPClient(
            client: HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration),
            userAgent: "urlpoll/\(urlpollVersion)")
    }()

    /// Sends `request` and follows its redirects, all within `timeout`.
    /// - Returns: The last response, or why there is none in words (`refused: the server refused the
    ///   connection: …`), never with the URL's password; with the session's cookies as they are afterwards.
    func perform(_ request: HookRequest, timeout: Duration) async -> HookOutcome {
        let jar = Jar(request.cookies)
        do {
            let response = try await withThrowingTaskGroup(of: HookResponse.self) { group in
                group.addTask { try await self.exchange(request, jar: jar, timeout: timeout) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw HTTPClientError.deadlineExceeded
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
            return .response(response, cookies: jar.cookies, session: request.session)
        } catch {
            let failure = HTTPProber.classify(error, timeout: timeout)
            var words = "\(failure.kind.rawValue): \(failure.detail)"
            if let password = RequestDescription(url: request.url, headers: [])?.credentials?.password,
                !password.isEmpty
            {
                words = words.replacingOccurrences(of: password, with: "xxxxx")
            }
            return .failure(
                "\(request.method) \(request.displayURL): \(words)", cookies: jar.cookies, session: request.session)
        }
    }

    /// The cookies a request's hops share, read once the request is over (or given up).
    private final class Jar: Sendable {
        private let storage: Mutex<CookieJar?>
        init(_ cookies: CookieJar?) { self.storage = Mutex(cookies) }
        var cookies: CookieJar? { self.storage.withLock { $0 } }
        func header(for hop: RequestDescription) -> String? {
            self.storage.withLock { $0?.header(for: hop, now: Date().timeIntervalSince1970) }
        }
        func store(_ fields: [String], from hop: RequestDescription) {
            self.storage.withLock { $0?.store(fields, from: hop, now: Date().timeIntervalSince1970) }
        }
    }

    private func exchange(_ request: HookRequest, jar: Jar, timeout: Duration) async throws -> HookResponse {
        let start = ContinuousClock.now
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.seconds * 1e9))
        guard var hop = RequestDescription(url: request.url, headers: request.headers, body: request.body) else {
            throw ProbeFailure(.badURL, detail: "not an absolute http or https URL")
        }
        let script = Target(url: request.url, headers: request.headers)
        var method = request.method
        var visited: Set<String> = []
        for count in 0...HTTPProber.maximumRedirects {
            visited.insert(method + " " + hop.url)
            var fields = hop.fields(method: method, userAgent: self.userAgent)
            if let cookie = jar.header(for: hop) {
                if let i = fields.firstIndex(where: { $0.name.lowercased() == "cookie" }) {
                    fields[i].value += "; " + cookie
                } else {
                    fields.insert(Header("Cookie", cookie), at: min(2, fields.count))
                }
            }
            var prepared = HTTPClientRequest(url: hop.url)
            prepared.method = HTTPMethod(rawValue: method)
            prepared.headers = HTTPHeaders(fields.map { ($0.name, $0.value) })
            if let body = hop.body { prepared.body = .bytes(ByteBuffer(bytes: body)) }
            let response = try await self.client.execute(prepared, deadline: deadline)
            var body: [UInt8] = []
            let bodyless = method == "HEAD" || response.status.code == 204 || response.status.code == 304
            if !bodyless {
                var left = Self.maximumBodySize
                for try await chunk in response.body {
                    body.append(contentsOf: chunk.readableBytesView.prefix(left))
                    left -= chunk.readableBytes
                    if left <= 0 { break }
                }
            }
            jar.store(response.headers["Set-Cookie"], from: hop)
            let code = Int(response.status.code)
            guard [301, 302, 303, 307, 308].contains(code), let location = response.headers.first(name: "Location")
            else {
                return HookResponse(
                    code: code, reason: response.status.reasonPhrase,
                    headers: response.headers.map { Header($0.name, $0.value) }, body: body,
                    latency: ContinuousClock.now - start, url: RequestDescription.redacting(hop.url))
            }
            guard count < HTTPProber.maximumRedirects else { break }
            guard let next = HTTPProber.redirect(hop, method: &method, code: code, location: location, script) else {
                throw ProbeFailure(.redirect, detail: "a redirect to a URL that is not http or https")
            }
            guard !visited.contains(method + " " + next.url) else {
                throw ProbeFailure(
                    .redirect, detail: "redirect loop (back to \(RequestDescription.redacting(next.url)))")
            }
            hop = next
        }
        throw ProbeFailure(.redirect, detail: "more than \(HTTPProber.maximumRedirects) redirects")
    }
}
