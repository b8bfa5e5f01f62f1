/// ProbeAddress is the `host:port` of a `tcp://` or `tls://` URL (RFC 3986 §3.2: an IPv6 literal in
/// brackets, a port from 1 to 65535, nothing after it but an optional `/`).
public struct ProbeAddress: Sendable, Hashable {
    /// The host name or address literal, without brackets.
    public var host: String
    /// The port, 1–65535.
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Reads `scheme://host:port` (or `…:port/`), or says in words what is wrong with it.
    public static func parse(_ url: String) -> Result<ProbeAddress, ProbeAddressError> {
        guard let range = url.firstRange(of: "://") else { return .failure(.init("not a URL")) }
        var rest = url[range.upperBound...]
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("#") else {
            return .failure(.init("expected only host:port after \"://\""))
        }
        let host: Substring
        let portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return .failure(.init("unclosed '[' in the host")) }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            portText = after.hasPrefix(":") ? after.dropFirst() : (after.isEmpty ? nil : after)
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
            portText = nil
        }
        guard !host.isEmpty else { return .failure(.init("no host")) }
        guard let portText else { return .failure(.init("no port; write host:port, as in tcp://db.example:5432")) }
        guard let port = Int(portText), (1...65_535).contains(port) else {
            return .failure(.init("the port must be a number from 1 to 65535 (got \"\(portText)\")"))
        }
        return .success(ProbeAddress(host: String(host), port: port))
    }
}

/// ProbeAddressError says why a `tcp://` or `tls://` URL is not `host:port`.
public struct ProbeAddressError: Error, Sendable, Hashable {
    /// The problem, in words.
    public var message: String

    init(_ message: String) {
        self.message = message
    }
}
