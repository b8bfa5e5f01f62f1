/// ListenAddress is where the HTTP listener binds: `HOST:PORT`, with an IPv6 host in brackets
/// (`[::1]:9464`), as `--listen` and the `listen` setting write it. Port 0 picks a free port.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// A host name or an IP address (without brackets).
    public var host: String
    /// 0 to 65535.
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`.
    /// - Throws: ``Problem`` saying, in words, what is wrong with `text`.
    public init(parsing text: String) throws(Problem) {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw Problem("\"\(text)\" is not HOST:PORT (an IPv6 address goes in brackets: [::1]:9464)")
            }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw Problem("\"\(text)\" is not HOST:PORT (for example 127.0.0.1:9464)")
            }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            if host.contains(":") {
                throw Problem("\"\(text)\": put an IPv6 address in brackets, as in [::1]:9464")
            }
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }) else {
            throw Problem("\"\(text)\" has no host (for example 127.0.0.1:9464, or 0.0.0.0:9464 for every address)")
        }
        guard let number = Int(port), (0...65_535).contains(number) else {
            throw Problem("\"\(text)\": the port must be a number from 0 to 65535")
        }
        self.init(host: String(host), port: number)
    }

    /// Whether only this machine can reach the address (`localhost`, 127.0.0.0/8, `::1`).
    public var isLoopback: Bool {
        self.host == "localhost" || self.host == "::1" || self.host.hasPrefix("127.")
    }

    /// `HOST:PORT`, with an IPv6 host in brackets.
    public var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// Why a text is not a listen address.
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
