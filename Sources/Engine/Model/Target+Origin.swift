extension Target {
    /// The URL's origin (RFC 6454 §4): its scheme and authority, lower-cased (`http://127.0.0.1:8080`),
    /// with any user information dropped. Polls in flight are limited per origin.
    var origin: String { urlOrigin(self.url) }
}

/// The origin (RFC 6454 §4) of `url`: its scheme and authority, lower-cased (`http://127.0.0.1:8080`), with
/// any user information dropped. A string without a scheme is its own origin, lower-cased.
func urlOrigin(_ url: String) -> String {
    let utf8 = url.utf8
    guard let colon = utf8.firstIndex(of: UInt8(ascii: ":")) else { return url.lowercased() }
    let start = utf8.index(colon, offsetBy: 3, limitedBy: utf8.endIndex) ?? utf8.endIndex
    let rest = utf8[start...]
    let end =
        rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }
        ?? utf8.endIndex
    let authority = utf8[start..<end]
    let host =
        authority.lastIndex(of: UInt8(ascii: "@")).map { authority[authority.index(after: $0)...] } ?? authority
    return (String(decoding: utf8[..<start], as: UTF8.self) + String(decoding: host, as: UTF8.self)).lowercased()
}
