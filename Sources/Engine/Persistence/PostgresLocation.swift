import FoundationEssentials

/// PostgresLocation is where the shared schedule lives: a `postgresql://user@host:port/database` URL
/// (`run --store`, or the `store` setting), read as libpq reads its connection URIs
/// (<https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING>), with the password taken from
/// `PGPASSWORD` or the password file (`PGPASSFILE`, else `~/.pgpass`;
/// <https://www.postgresql.org/docs/15/libpq-pgpass.html>), never from the URL, so it shows in no process
/// list, log line or error message.
///
/// Defaults as libpq's: port 5432, the database named like the user, `sslmode=prefer` (TLS when the server
/// offers it); `?sslmode=disable` or `?sslmode=require` choose otherwise.
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    /// How the connection uses TLS (libpq's `sslmode`).
    public enum TLSMode: String, Sendable, Hashable {
        case disable, prefer, require
    }

    public var user: String
    public var host: String
    public var port: Int
    public var database: String
    public var tls: TLSMode
    /// The password, from `PGPASSWORD` or the password file; never printed (``description`` leaves it out).
    public var password: String?
    /// What to warn about the password file, if anything: one readable by its group or others is ignored, as
    /// libpq ignores it (<https://www.postgresql.org/docs/15/libpq-pgpass.html>).
    public var passwordFileWarning: String?

    /// Reads `text`, a `postgresql://` (or `postgres://`) URL.
    /// - Parameters:
    ///   - environment: Where `PGPASSWORD`, `PGPASSFILE` and `HOME` are read.
    /// - Throws: ``HistoryError`` in words: not a PostgreSQL URL, no user or host, a port or `sslmode` that
    ///   is not one, or a password written in the URL.
    public init(_ text: String, environment: [String: String]) throws(HistoryError) {
        guard let scheme = text.range(of: "://"), ["postgresql", "postgres"].contains(text[..<scheme.lowerBound])
        else {
            throw HistoryError(
                "the store must be a postgresql://user@host:port/database URL, not '\(Self.redacting(text))'")
        }
        var rest = Substring(text[scheme.upperBound...])
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        guard let at = rest.lastIndex(of: "@") else {
            throw HistoryError(
                "the store URL \(Self.redacting(text)) names no user: write postgresql://USER@\(rest)/\(path)")
        }
        let userInfo = rest[..<at]
        let hostPort = rest[rest.index(after: at)...]
        if userInfo.contains(":") {
            throw HistoryError(
                "the store URL \(Self.redacting(text)) carries a password, which would show in process lists and logs; put it in PGPASSWORD or ~/.pgpass instead"
            )
        }
        self.user = String(userInfo).removingPercentEncoding ?? String(userInfo)
        guard !self.user.isEmpty else { throw HistoryError("the store URL \(text) names no user") }
        var host = hostPort
        var port = 5432
        // RFC 3986's authority: an IPv6 address in brackets, then nothing or `:port`; any other host holds
        // no colon nor bracket.
        let notAHost = HistoryError(
            "the store URL \(Self.redacting(text)) has '\(hostPort)', which is not a host and port: write host:port, or [IPv6 address]:port"
        )
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw notAHost }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                port = try Self.port(after.dropFirst(), in: text)
            } else if !after.isEmpty {
                throw notAHost
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." || $0 == "%" }) else {
                throw notAHost
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            port = try Self.port(hostPort[hostPort.index(after: colon)...], in: text)
        }
        guard !host.isEmpty else { throw HistoryError("the store URL \(text) names no host") }
        if !hostPort.hasPrefix("["), host.contains(where: { ":[]".contains($0) }) { throw notAHost }
        self.host = String(host)
        self.port = port
        let database = String(path).removingPercentEncoding ?? String(path)
        self.database = database.isEmpty ? self.user : database
        self.tls = .prefer
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let name = parts.first.map(String.init) ?? ""
            let value = parts.count > 1 ? String(parts[1]) : ""
            switch name {
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    throw HistoryError(
                        "the store URL's sslmode must be disable, prefer or require, not '\(value)'")
                }
                self.tls = mode
            default:
                throw HistoryError("the store URL's parameter '\(name)' is not known (known: sslmode)")
            }
        }
        if let password = environment["PGPASSWORD"] {
            self.password = password
        } else {
            (self.password, self.passwordFileWarning) = Self.passwordFromFile(
                environment: environment, host: self.host, port: self.port, database: self.database, user: self.user)
        }
    }

    /// The URL without any password: `postgresql://user@host:port/database`.
    public var description: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "postgresql://\(self.user)@\(host):\(self.port)/\(self.database)"
    }

    private static func port(_ text: Substring, in url: String) throws(HistoryError) -> Int {
        guard let port = Int(text), (1...65_535).contains(port) else {
            throw HistoryError("the store URL \(Self.redacting(url)) has a port that is not one: '\(text)'")
        }
        return port
    }

    /// `text` with anything between `://` and `@` after a colon replaced by `xxxxx`.
    static func redacting(_ text: String) -> String {
        guard let scheme = text.range(of: "://") else { return text }
        let rest = text[scheme.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else {
            return text
        }
        return String(text[..<colon]) + ":xxxxx" + String(text[at...])
    }

    /// The password the password file gives for this connection: its first line
    /// `hostname:port:database:username:password` whose fields match (`*` matches anything; `\:` and `\\`
    /// are a colon and a backslash), as libpq reads it. Nil without a file or a matching line, and, with a
    /// warning in words, when the file is readable by its group or others (its mode is not 0600 or less).
    static func passwordFromFile(
        environment: [String: String], host: String, port: Int, database: String, user: String
    ) -> (password: String?, warning: String?) {
        let path = environment["PGPASSFILE"] ?? environment["HOME"].map { $0 + "/.pgpass" }
        guard let path, let data = FileManager.default.contents(atPath: path) else { return (nil, nil) }
        if let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int,
            mode & 0o077 != 0
        {
            return (
                nil,
                "the password file \(path) is ignored: it can be read by its group or others (mode \(String(mode & 0o777, radix: 8))); make it readable by its owner only (chmod 0600), as libpq asks"
            )
        }
        let wanted = [host, String(port), database, user]
        for line in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
            if line.hasPrefix("#") { continue }
            let fields = Self.fields(of: line)
            guard fields.count == 5 else { continue }
            if zip(fields, wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return (fields[4], nil) }
        }
        return (nil, nil)
    }

    private static func fields(of line: Substring) -> [String] {
        var fields: [String] = []
        var field = ""
        var escaped = false
        for character in line {
            if escaped {
                field.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == ":", fields.count < 4 {
                fields.append(field)
                field = ""
            } else {
                field.append(character)
            }
        }
        fields.append(field)
        return fields
    }
}
