import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// HookHTTPClient sends the requests hooks make with `urlpoll.http`, off the Lua state: the hook's coroutine
/// waits while it runs, and ``ScriptHost`` resumes it with the outcome.
///
/// It sends them on ``HTTP1Client``, urlpoll's own HTTP/1.1 client, as polls are sent (an instance of its
/// own: never a poll's or an alert's connection), so a hook's request reads what a poll reads and says what
/// a poll says: bare-LF lines and control bytes in header values are read as curl reads them (RFC 9112
/// §2.2), a chain that does not verify fails with the reason and the subject in words (``PresentedChain``,
/// RFC 5280 and RFC 6125, to the system's roots or `tls.ca_file`'s, against `tls.server_name` or the
/// host, unless `tls.verify` is false; the request is then never sent), TLS is 1.2 or 1.3 (RFC 8996), and
/// the response carries the phases (``PhaseTimings``) and the chain's facts (``TLSFacts``).
///
/// Redirects (301, 302, 303, 307, 308) are followed here, one hop at a time, with the rules the prober
/// uses (``HTTPProber/redirect(_:method:code:location:_:)``: net/http's and curl's method rewriting, no
/// credentials to another host), so that a session stores the cookies of every hop (RFC 6265 §5.3) and
/// sends each hop its own.
struct HookHTTPClient: Sendable {
    /// The most content read from a response; the rest is not read (1 MiB, as a `check`'s poll).
    static let maximumBodySize = 1 << 20

    let client: HTTP1Client
    let userAgent: String

    /// The client every script host uses unless given another: its own connections (up to 8 idle per
    /// host, 64 in all, closed after 50 s idle, as polls'), on NIO's shared event loops. It lives as long
    /// as the process.
    static let shared = HookHTTPClient(
        client: HTTP1Client(
            group: MultiThreadedEventLoopGroup.singleton, maximumIdlePerHost: 8, maximumIdle: 64,
            idleTimeout: .seconds(50)),
        userAgent: "urlpoll/\(urlpollVersion)")

    /// Sends `request` and follows its redirects, all within `timeout`.
    /// - Returns: The last response, or why there is none in words (`refused: the server refused the
    ///   connection: …`, `tls: self-signed certificate: CN=… is not a trusted root`), never with the URL's
    ///   password; with the session's cookies as they are afterwards.
    func perform(_ request: HookRequest, timeout: Duration) async -> HookOutcome {
        let jar = Jar(request.cookies)
        do {
            let response = try await self.exchange(request, jar: jar, timeout: timeout)
            return .response(response, cookies: jar.cookies, session: request.session)
        } catch {
            let failure =
                (error as? HTTP1Client.HandshakeFailure)?.failure ?? HTTPProber.classify(error, timeout: timeout)
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
        let firstHost = hop.host
        var method = request.method
        var visited: Set<String> = []
        var timings = PhaseTimings()
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
            var tls: TLSOptions?
            if hop.scheme == "https" {
                var options = request.tls ?? TLSOptions()
                // `server_name` is for the request's own host; a redirect elsewhere is checked by its own name.
                if options.serverName == nil || hop.host != firstHost { options.serverName = hop.host }
                tls = options
            }
            let response = try await self.client.execute(
                hop, method: HTTPMethod(rawValue: method), fields: fields, tls: tls, deadline: deadline,
                captureBody: true, maximumBodySize: Self.maximumBodySize)
            timings.add(response.timings)
            let headers = response.head.headers
            jar.store(headers["Set-Cookie"], from: hop)
            let code = Int(response.head.status.code)
            guard [301, 302, 303, 307, 308].contains(code), let location = headers.first(name: "Location") else {
                return HookResponse(
                    code: code, reason: response.head.status.reasonPhrase,
                    headers: headers.map { Header($0.name, $0.value) }, body: response.body ?? [],
                    latency: ContinuousClock.now - start, url: RequestDescription.redacting(hop.url),
                    timings: timings, tls: response.tls)
            }
            guard count < HTTPProber.maximumRedirects else { break }
            guard let next = HTTPProber.redirect(hop, method: &method, code: code, location: location, script) else {
                throw ProbeFailure(
                    .redirect,
                    detail: "a redirect to a URL that cannot be followed (not http or https, or a port out of "
                        + "1–65535): \(RequestDescription.redacting(location))")
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
