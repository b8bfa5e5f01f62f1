import Foundation

/// RequestDescription is what one URL's request is, worked out once when the script is loaded (and again
/// for each redirect hop): where it goes, the request line's target, and every header field both HTTP
/// paths send, in the order they send them. ``HTTPProber`` sends the same bytes whichever path carries it.
///
/// The header list is, in order (RFC 9110 §7.2, §11.7.1; RFC 9112 §3.2):
/// 1. `Host`: the script's own `Host` header when it sets one (once), else the URL's host, with the port
///    when it is not the scheme's default;
/// 2. `User-Agent`, unless the script sets one (the prober's default is added when sending);
/// 3. `Authorization: Basic …` from the URL's user info (`http://user:password@host/`), as curl and Go's
///    net/http send it, unless the script sets its own `Authorization`;
/// 4. the script's other headers, in the script's order; its `Content-Length`, `Transfer-Encoding` and
///    `Connection` are dropped: the framing is the prober's.
///
/// The framing (`Content-Length`) is added when sending, because it depends on the method: see
/// ``framing(method:)``.
public struct RequestDescription: Sendable, Hashable {
    /// `http` or `https`.
    public var scheme: String
    /// The host to connect to: a name, an IPv4 address, or an IPv6 address without brackets.
    public var host: String
    /// The TCP port (the scheme's default, 80 or 443, when the URL has none).
    public var port: Int
    /// Path and query as sent on the request line (RFC 9112 §3.2.1, origin-form); `/` when empty.
    public var target: String
    /// The URL's user name and password, percent-decoded; sent as Basic credentials (RFC 7617).
    public var credentials: (user: String, password: String)? {
        get { self.user.map { ($0, self.password) } }
        set {
            self.user = newValue?.user
            self.password = newValue?.password ?? ""
        }
    }
    private var user: String?
    private var password: String = ""
    /// The header fields, in the order sent, without the framing; see the type's description.
    public var headers: [Header]
    /// Whether the script set its own `User-Agent`.
    public var hasUserAgent: Bool
    /// The request content (the URL's `body`), or nil for none.
    public var body: [UInt8]?

    /// The URL without its user info, as AsyncHTTPClient is given it.
    public var url: String {
        let bracketed = self.host.utf8.contains(UInt8(ascii: ":")) ? "[\(self.host)]" : self.host
        let defaultPort = self.scheme == "https" ? 443 : 80
        return "\(self.scheme)://\(bracketed)\(self.port == defaultPort ? "" : ":\(self.port)")\(self.target)"
    }

    /// The `Host` field value the URL implies.
    public var authority: String {
        let bracketed = self.host.utf8.contains(UInt8(ascii: ":")) ? "[\(self.host)]" : self.host
        let defaultPort = self.scheme == "https" ? 443 : 80
        return bracketed + (self.port == defaultPort ? "" : ":\(self.port)")
    }

    /// Parses `url` (an absolute `http` or `https` URL) and builds the header list from the script's
    /// `headers`; nil when the URL is not one (the loader has already refused such URLs). The common form
    /// (`http(s)://host[:port][/path][?query]`, RFC 3986 characters only) is read by a scan of its bytes;
    /// anything else (credentials, IPv6, fragments, odd characters) by Foundation's `URLComponents`, which
    /// the scan agrees with wherever it applies (see ``URLParts``).
    public init?(url: String, headers: [Header], body: [UInt8]? = nil) {
        guard let parts = URLParts(scanning: url) ?? URLParts(parsing: url) else { return nil }
        self.scheme = parts.scheme
        self.host = parts.host
        self.port = parts.port
        self.target = parts.target
        if let user = parts.user {
            self.user = user
            self.password = parts.password ?? ""
        }
        self.headers = []
        self.hasUserAgent = false
        self.body = body
        self.setHeaders(headers)
    }

    /// Rebuilds the header list from the script's headers (for a redirect: the same script headers, and
    /// the credentials of the new URL, if any).
    mutating func setHeaders(_ scriptHeaders: [Header]) {
        var list: [Header] = []
        let host = scriptHeaders.first { $0.name.lowercased() == "host" }
        list.append(Header("Host", host?.value ?? self.authority))
        self.hasUserAgent = scriptHeaders.contains { $0.name.lowercased() == "user-agent" }
        if let (user, password) = self.credentials,
            !scriptHeaders.contains(where: { $0.name.lowercased() == "authorization" })
        {
            let token = Data("\(user):\(password)".utf8).base64EncodedString()
            list.append(Header("Authorization", "Basic \(token)"))
        }
        for header in scriptHeaders where !Self.probersFields.contains(header.name.lowercased()) {
            list.append(header)
        }
        self.headers = list
    }

    /// The fields the prober sets itself, which a script's headers cannot replace (`Host` is taken once).
    private static let probersFields: Set<String> = ["host", "content-length", "transfer-encoding", "connection"]

    /// The framing header for `method`: `Content-Length` with the body's length when there is a body, and
    /// `Content-Length: 0` for a method whose body has a meaning but that has none (POST, PUT, PATCH,
    /// OPTIONS…), so that servers refusing chunked requests (411) accept it (RFC 9110 §8.6: "A user agent
    /// SHOULD send Content-Length in a request when the method defines a meaning for enclosed content");
    /// nothing for GET, HEAD, DELETE, TRACE and CONNECT without a body. This is what AsyncHTTPClient sends.
    public func framing(method: String) -> Header? {
        if let body = self.body { return Header("Content-Length", String(body.count)) }
        switch method {
        case "GET", "HEAD", "DELETE", "TRACE", "CONNECT": return nil
        default: return Header("Content-Length", "0")
        }
    }

    /// Every header field of the request, in the order sent: ``headers``, with `userAgent` second unless
    /// the script set its own, and the framing (``framing(method:)``) last, where AsyncHTTPClient puts it.
    public func fields(method: String, userAgent: String) -> [Header] {
        var fields = self.headers
        if !self.hasUserAgent { fields.insert(Header("User-Agent", userAgent), at: min(1, fields.count)) }
        if let framing = self.framing(method: method) { fields.append(framing) }
        return fields
    }

    /// Whether `url` holds an `@` anywhere, so may have user information; false for most URLs, said by one
    /// `memchr` over the bytes (loading 100,000 URLs asks this of each, more than once).
    public static func mayHaveUserInfo(_ url: String) -> Bool {
        url.utf8.withContiguousStorageIfAvailable { bytes in
            guard let base = bytes.baseAddress else { return false }
            return memchr(base, Int32(UInt8(ascii: "@")), bytes.count) != nil
        } ?? url.utf8.contains(UInt8(ascii: "@"))
    }

    /// `url` with its password replaced by `xxxxx` (`http://probe:xxxxx@host/`), for everything urlpoll prints
    /// or exports; `url` itself when it has no password.
    public static func redacting(_ url: String) -> String {
        guard Self.mayHaveUserInfo(url), let schemeEnd = url.range(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return url }
        let userInfo = rest[..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":xxxxx" + String(url[at...])
    }
}
