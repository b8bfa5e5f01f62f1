extension HTTP1Client {
    /// Where a request goes: what a plain `http://` URL splits into.
    struct Endpoint: Hashable, Sendable {
        var host: String
        var port: Int
        /// The `Host` header: the host, with the port when it is not 80.
        var authority: String
        /// Path and query, as sent on the request line.
        var path: String

        /// Splits `url`, or returns nil when the fast path does not handle it (another scheme, user info,
        /// a fragment-only oddity): AsyncHTTPClient then takes the request and says what is wrong.
        init?(_ url: String) {
            // Scanned as UTF-8 bytes: this runs on every poll.
            let bytes = url.utf8
            guard bytes.count > 7, bytes.starts(with: "http://".utf8) else { return nil }
            let rest = bytes.index(bytes.startIndex, offsetBy: 7)
            var end = rest
            while end != bytes.endIndex {
                let byte = bytes[end]
                if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") { break }
                // User info needs AsyncHTTPClient.
                if byte == UInt8(ascii: "@") { return nil }
                end = bytes.index(after: end)
            }
            guard end != rest else { return nil }
            let authority = url[rest..<end]
            var pathEnd = end
            while pathEnd != bytes.endIndex {
                let byte = bytes[pathEnd]
                if byte == UInt8(ascii: "#") { break }
                if byte <= 0x20 || byte >= 0x7f { return nil }
                pathEnd = bytes.index(after: pathEnd)
            }
            let path = url[end..<pathEnd]
            if path.isEmpty {
                self.path = "/"
            } else if path.utf8.first == UInt8(ascii: "?") {
                self.path = "/" + path
            } else {
                self.path = String(path)
            }
            var host = authority
            var port = 80
            if authority.utf8.first == UInt8(ascii: "[") {
                // [IPv6]:port
                guard let close = authority.utf8.firstIndex(of: UInt8(ascii: "]")) else { return nil }
                host = authority[authority.utf8.index(after: authority.startIndex)..<close]
                let after = authority[authority.utf8.index(after: close)...]
                if !after.isEmpty {
                    guard after.utf8.first == UInt8(ascii: ":"), let p = Int(after.dropFirst()), (1...65535).contains(p)
                    else { return nil }
                    port = p
                }
            } else if let colon = authority.utf8.lastIndex(of: UInt8(ascii: ":")) {
                guard let p = Int(authority[authority.utf8.index(after: colon)...]), (1...65535).contains(p) else {
                    return nil
                }
                host = authority[..<colon]
                port = p
            }
            guard !host.isEmpty else { return nil }
            self.host = String(host)
            self.port = port
            self.authority = String(authority)
        }
    }
}
