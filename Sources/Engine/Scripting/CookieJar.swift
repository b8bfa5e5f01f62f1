import AsyncHTTPClient
import FoundationEssentials

/// CookieJar is the cookie store of one `urlpoll.http.session()`: the cookies its responses set, sent back
/// on its later requests, as a user agent does (RFC 6265 §5.3, storage; §5.4, the `Cookie` header).
///
/// `Set-Cookie` values are parsed by AsyncHTTPClient (`HTTPClient.Cookie`, RFC 6265 §5.2); this type only
/// keeps them and picks the ones a request gets. Not done: the public-suffix check (§5.3 step 5), which
/// needs the public suffix list; a script's session talks to its own servers.
struct CookieJar: Sendable, Hashable {
    /// One stored cookie (RFC 6265 §5.3).
    struct Cookie: Sendable, Hashable {
        var name: String
        var value: String
        /// The host (host-only) or domain it is sent to, lower-case.
        var domain: String
        /// Sent only to `domain` itself when set; to its subdomains too when not (a `Domain` attribute).
        var hostOnly: Bool
        /// Sent only to paths at or below this one.
        var path: String
        /// Sent only over https.
        var secure: Bool
        /// Not for scripts in browsers (kept for the record; urlpoll sends it like any other).
        var httpOnly: Bool
        /// When it expires, seconds since the epoch; nil for a session cookie (kept as long as the session).
        var expires: Double?
    }

    /// The cookies, in the order they were first stored.
    var cookies: [Cookie] = []

    /// Stores the cookies of a response's `Set-Cookie` fields, for the request that got it (§5.3): a cookie
    /// for another domain is ignored; one that has already expired removes the stored cookie of the same
    /// name, domain and path.
    /// - Parameter now: Seconds since the epoch.
    mutating func store(_ setCookies: [String], from request: RequestDescription, now: Double) {
        let host = request.host.lowercased()
        for field in setCookies {
            guard let parsed = HTTPClient.Cookie(header: field, defaultDomain: host) else { continue }
            let attributes = field.split(separator: ";").dropFirst().map {
                $0.trimmingCharacters(in: .whitespaces).lowercased()
            }
            let hasDomain = attributes.contains { $0.hasPrefix("domain=") && $0.count > "domain=".count }
            let domain = parsed.domain ?? host
            if hasDomain, !Self.domainMatches(host, domain) { continue }
            let hasPath = attributes.contains { $0.hasPrefix("path=/") }
            var expires: Double?
            if let maxAge = parsed.maxAge {
                expires = now + Double(maxAge)
            } else if let date = parsed.expires {
                expires = date.timeIntervalSince1970
            }
            let cookie = Cookie(
                name: parsed.name, value: parsed.value, domain: domain, hostOnly: !hasDomain,
                path: hasPath ? parsed.path : Self.defaultPath(request.target), secure: parsed.secure,
                httpOnly: parsed.httpOnly, expires: expires)
            let same = self.cookies.firstIndex {
                $0.name == cookie.name && $0.domain == cookie.domain && $0.path == cookie.path
            }
            if let expires, expires <= now {
                if let same { self.cookies.remove(at: same) }
            } else if let same {
                self.cookies[same] = cookie
            } else {
                self.cookies.append(cookie)
            }
        }
    }

    /// The `Cookie` field value for `request` (§5.4): the unexpired cookies whose domain and path match
    /// it, and only over https for secure ones; longer paths first. Nil when none applies.
    func header(for request: RequestDescription, now: Double) -> String? {
        let host = request.host.lowercased()
        let path =
            request.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first
            .map(String.init) ?? "/"
        let matching = self.cookies.enumerated().filter { _, cookie in
            if let expires = cookie.expires, expires <= now { return false }
            if cookie.secure, request.scheme != "https" { return false }
            if cookie.hostOnly ? host != cookie.domain : !Self.domainMatches(host, cookie.domain) { return false }
            return Self.pathMatches(path, cookie.path)
        }
        guard !matching.isEmpty else { return nil }
        // Longer paths first; among equal paths, the earlier stored first (§5.4 step 2).
        let sorted = matching.sorted { a, b in
            a.element.path.count != b.element.path.count
                ? a.element.path.count > b.element.path.count : a.offset < b.offset
        }
        return sorted.map { "\($0.element.name)=\($0.element.value)" }.joined(separator: "; ")
    }

    /// §5.1.3: `host` is `domain`, or ends with `.` + `domain` and is not an IP address.
    static func domainMatches(_ host: String, _ domain: String) -> Bool {
        if host == domain { return true }
        let isAddress = host.contains(":") || host.split(separator: ".").allSatisfy { UInt8($0) != nil }
        return !isAddress && host.hasSuffix("." + domain)
    }

    /// §5.1.4: the request path is the cookie's, or below it.
    static func pathMatches(_ path: String, _ cookiePath: String) -> Bool {
        if path == cookiePath { return true }
        guard path.hasPrefix(cookiePath) else { return false }
        return cookiePath.hasSuffix("/") || path.dropFirst(cookiePath.count).first == "/"
    }

    /// §5.1.4: the directory of the request's path, when `Set-Cookie` names no `Path`.
    static func defaultPath(_ target: String) -> String {
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path.hasPrefix("/"), let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }
}
