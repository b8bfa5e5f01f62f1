import Foundation

extension RequestDescription {
    /// URLParts is what a request needs from an absolute `http` or `https` URL (RFC 3986 §3): the scheme
    /// (lower-cased), the host (an IPv6 address without its brackets), the port (the scheme's default when
    /// the URL has none), the request target (path and query as written, `/` when the path is empty; RFC 9112
    /// §3.2.1) and the user information, percent-decoded.
    struct URLParts: Equatable {
        var scheme: String
        var host: String
        var port: Int
        var target: String
        var user: String?
        var password: String?

        /// Reads the common form, `http(s)://host[:port][/path][?query]` with a registered name or IPv4 host
        /// and only the characters RFC 3986 allows unescaped there (and `%XX` escapes), in one pass over the
        /// bytes; nil for anything else (user information, IPv6, a fragment, an empty or odd port, any
        /// other character), which ``init(parsing:)`` then reads. Loading 100,000 URLs spends most of its
        /// time here, so this form does not go through `URLComponents`.
        init?(scanning url: String) {
            var url = url
            let parts: URLParts?? = url.withUTF8 { Self.scan($0) }
            guard let parts = parts.flatMap({ $0 }) else { return nil }
            self = parts
        }

        /// Reads `url` with Foundation's `URLComponents`: nil when it is not an absolute http or https URL
        /// with a host, or its port is not one a connection can use (1 to 65535; `URLComponents` takes any
        /// number, and a larger one would trap, or wrap to another port, where it meets a 16-bit socket port).
        init?(parsing url: String) {
            guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
                scheme == "http" || scheme == "https", var host = components.host, !host.isEmpty,
                components.port.map({ (1...65_535).contains($0) }) ?? true
            else { return nil }
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self.scheme = scheme
            self.host = host
            self.port = components.port ?? (scheme == "https" ? 443 : 80)
            var target = components.percentEncodedPath
            if target.isEmpty { target = "/" }
            if let query = components.percentEncodedQuery { target += "?" + query }
            self.target = target
            if let user = components.user {
                self.user = user
                self.password = components.password
            }
        }

        private init(scheme: String, host: String, port: Int, target: String) {
            self.scheme = scheme
            self.host = host
            self.port = port
            self.target = target
        }

        /// The scan behind ``init(scanning:)``: `.some(nil)` means "not the common form".
        private static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> URLParts?? {
            var i = 0
            let count = bytes.count
            func lower(_ byte: UInt8) -> UInt8 { byte | 0x20 }
            // Scheme: http or https, any case, then "://".
            guard count > 7, lower(bytes[0]) == UInt8(ascii: "h"), lower(bytes[1]) == UInt8(ascii: "t"),
                lower(bytes[2]) == UInt8(ascii: "t"), lower(bytes[3]) == UInt8(ascii: "p")
            else { return .some(nil) }
            i = 4
            var secure = false
            if lower(bytes[i]) == UInt8(ascii: "s") {
                secure = true
                i += 1
            }
            guard i + 3 <= count, bytes[i] == UInt8(ascii: ":"), bytes[i + 1] == UInt8(ascii: "/"),
                bytes[i + 2] == UInt8(ascii: "/")
            else { return .some(nil) }
            i += 3
            // Host: letters, digits, '-', '.', '_', '~' (a registered name or an IPv4 address).
            let hostStart = i
            while i < count, Self.isHostByte(bytes[i]) { i += 1 }
            guard i > hostStart else { return .some(nil) }
            let hostEnd = i
            // An internationalised name (a label starting "xn--", RFC 5891) URLComponents gives back decoded.
            if Self.hasPunycodeLabel(bytes[hostStart..<hostEnd]) { return .some(nil) }
            // Port: 1 to 5 digits, no leading zero, at most 65535.
            var port = secure ? 443 : 80
            if i < count, bytes[i] == UInt8(ascii: ":") {
                i += 1
                let portStart = i
                var value = 0
                while i < count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9"), i - portStart < 5 {
                    value = value * 10 + Int(bytes[i] - UInt8(ascii: "0"))
                    i += 1
                }
                guard i > portStart, bytes[portStart] != UInt8(ascii: "0"), value <= 65535 else { return .some(nil) }
                port = value
            }
            // Path, then query: RFC 3986 pchar, '/' (and '?' in the query), `%XX`; nothing after them.
            let targetStart = i
            while i < count {
                let byte = bytes[i]
                if byte == UInt8(ascii: "%") {
                    guard i + 2 < count, Self.isHex(bytes[i + 1]), Self.isHex(bytes[i + 2]) else { return .some(nil) }
                    i += 3
                    continue
                }
                guard byte == UInt8(ascii: "?") || Self.isPathByte(byte) else { return .some(nil) }
                i += 1
            }
            // An authority must be followed by "/" or "?" (or nothing) for the path to be absolute.
            if targetStart < count, bytes[targetStart] != UInt8(ascii: "/"), bytes[targetStart] != UInt8(ascii: "?") {
                return .some(nil)
            }
            let host = String(decoding: UnsafeBufferPointer(rebasing: bytes[hostStart..<hostEnd]), as: UTF8.self)
            var target = String(decoding: UnsafeBufferPointer(rebasing: bytes[targetStart..<count]), as: UTF8.self)
            if targetStart == count || bytes[targetStart] == UInt8(ascii: "?") { target = "/" + target }
            return .some(URLParts(scheme: secure ? "https" : "http", host: host, port: port, target: target))
        }

        /// Whether a label of `host` starts with the IDNA ACE prefix `xn--`, in any case.
        private static func hasPunycodeLabel(_ host: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
            var labelStart = true
            var i = host.startIndex
            while i < host.endIndex {
                if labelStart, host.endIndex - i >= 4, host[i] | 0x20 == UInt8(ascii: "x"),
                    host[i + 1] | 0x20 == UInt8(ascii: "n"), host[i + 2] == UInt8(ascii: "-"),
                    host[i + 3] == UInt8(ascii: "-")
                {
                    return true
                }
                labelStart = host[i] == UInt8(ascii: ".")
                i += 1
            }
            return false
        }

        /// RFC 3986 §3.2.2 reg-name characters, without percent-escapes and sub-delims.
        private static func isHostByte(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                true
            default: false
            }
        }

        /// RFC 3986 §3.3 pchar (unreserved, sub-delims, ':' and '@') and '/', without percent-escapes.
        private static func isPathByte(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"),
                UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","),
                UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "/"):
                true
            default: false
            }
        }

        private static func isHex(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
                UInt8(ascii: "A")...UInt8(ascii: "F"):
                true
            default: false
            }
        }
    }
}
