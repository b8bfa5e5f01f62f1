/// DNSQuery is what a `dns://[server[:port]]/name?type=TYPE` URL asks (the form of RFC 4501, without its
/// class): a name, a record type, and the server to ask, or the system's resolver when the URL names none.
public struct DNSQuery: Sendable, Hashable {
    /// The record types a URL may ask for, with their numbers (RFC 1035 §3.2.2, RFC 3596, RFC 2782).
    public static let types: [(name: String, code: Int32)] = [
        ("A", 1), ("AAAA", 28), ("CNAME", 5), ("MX", 15), ("TXT", 16), ("NS", 2), ("SOA", 6), ("SRV", 33),
        ("PTR", 12),
    ]

    /// The server's address (an IP literal), or `nil` for the first name server in /etc/resolv.conf.
    public var server: String?
    /// The server's port (default 53).
    public var port: Int
    /// The name asked for, without a final dot.
    public var name: String
    /// The record type's mnemonic (`"A"`, `"MX"`, ...).
    public var type: String

    /// The type's number.
    public var typeCode: Int32 { Self.types.first { $0.name == self.type }!.code }

    /// Reads a `dns://` URL, or says in words what is wrong with it.
    public static func parse(_ url: String) -> Result<DNSQuery, ProbeAddressError> {
        guard let range = url.firstRange(of: "://") else { return .failure(.init("not a URL")) }
        let rest = url[range.upperBound...]
        guard let slash = rest.firstIndex(of: "/") else {
            return .failure(.init("no name; write dns://[server[:port]]/name?type=A"))
        }
        let authority = rest[..<slash]
        let pathAndQuery = rest[rest.index(after: slash)...]
        let path = pathAndQuery.prefix { $0 != "?" }
        let query = pathAndQuery.dropFirst(path.count + 1)
        var server: String?
        var port = 53
        if !authority.isEmpty {
            switch ProbeAddress.parse(
                "dns://" + authority + (authority.hasSuffix("]") || !authority.contains(":") ? ":53" : ""))
            {
            case .success(let address):
                guard CertificateCheck.isAddress(address.host) else {
                    return .failure(.init("the server must be an IP address (got \"\(address.host)\")"))
                }
                server = address.host
                port = address.port
            case .failure(let error):
                return .failure(error)
            }
        }
        var name = String(path)
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty, !name.contains("/") else {
            return .failure(.init("no name; write dns://[server[:port]]/name?type=A"))
        }
        var type = "A"
        for item in query.split(separator: "&") where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0].lowercased() == "type" else {
                return .failure(.init("unknown query parameter \"\(item)\" (known: type)"))
            }
            type = parts[1].uppercased()
            guard Self.types.contains(where: { $0.name == type }) else {
                let known = Self.types.map(\.name).joined(separator: ", ")
                return .failure(.init("unknown DNS type \"\(parts[1])\" (known types: \(known))"))
            }
        }
        return .success(DNSQuery(server: server, port: port, name: name, type: type))
    }
}
