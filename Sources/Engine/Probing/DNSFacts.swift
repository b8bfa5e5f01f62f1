/// DNSFacts is what a DNS query got back: the response code and the answer section (RFC 1035 §4.1), read
/// with glibc's libresolv. Hook tables show it as `res.rcode` and `res.answers`.
public struct DNSFacts: Sendable, Hashable {
    /// One resource record of the answer section.
    public struct Answer: Sendable, Hashable {
        /// The owner name, without the final dot (`www.example.com`).
        public var name: String
        /// The type's mnemonic (`"A"`, `"MX"`, ...; RFC 1035 §3.2.2, RFC 3596, RFC 2782).
        public var type: String
        /// Time to live, in seconds.
        public var ttl: Int
        /// The record's data in presentation form (RFC 1035 §5.1): `"192.0.2.1"`, `"10 mail.example.com."`,
        /// a TXT record's text without quotes.
        public var data: String

        public init(name: String, type: String, ttl: Int, data: String) {
            self.name = name
            self.type = type
            self.ttl = ttl
            self.data = data
        }
    }

    /// The response code's name: `"NOERROR"`, `"NXDOMAIN"`, `"SERVFAIL"`, `"REFUSED"`, ... (RFC 6895 §2.3).
    public var rcode: String
    /// The answer section, in the server's order.
    public var answers: [Answer]
    /// The server that answered, `address:port`.
    public var server: String
    /// Records in the authority section (RFC 1035 §4.1: NSCOUNT), for `probe_dns_authority_rrs`.
    public var authorityCount: Int
    /// Records in the additional section (RFC 1035 §4.1: ARCOUNT), for `probe_dns_additional_rrs`.
    public var additionalCount: Int

    public init(rcode: String, answers: [Answer], server: String, authorityCount: Int = 0, additionalCount: Int = 0) {
        self.rcode = rcode
        self.answers = answers
        self.server = server
        self.authorityCount = authorityCount
        self.additionalCount = additionalCount
    }

    /// The zone's serial number (RFC 1035 §3.3.13) from the first SOA record of the answers, or `nil` when
    /// there is none (`probe_dns_serial`).
    public var serial: Double? {
        guard let soa = self.answers.first(where: { $0.type == "SOA" }) else { return nil }
        // MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM
        let words = soa.data.split(separator: " ")
        guard words.count >= 3, let serial = UInt32(words[2]) else { return nil }
        return Double(serial)
    }
}
