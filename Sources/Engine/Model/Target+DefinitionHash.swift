import Crypto

extension Target {
    /// SHA-256 (hex) of what the URL is to poll and how: the URL as written, its method, timeout, interval,
    /// headers, expected statuses, hooks (by where they are defined), labels, group, body, bytes to send,
    /// TLS options and DNS rcodes. The same script loaded in two processes gives the same hash.
    public var definitionHash: String {
        let parts: [String] = [
            self.url, self.name, "\(self.ordinal)", String(reflecting: self.method), String(reflecting: self.timeout),
            String(reflecting: self.interval), String(reflecting: self.headers), String(reflecting: self.expect),
            self.backoff?.location ?? "", self.check?.location ?? "", String(reflecting: self.labels),
            String(reflecting: self.group), String(reflecting: self.body), String(reflecting: self.send),
            String(reflecting: self.tls), String(reflecting: self.rcodes),
        ]
        var hash = SHA256()
        for part in parts { hash.update(data: Array(part.utf8) + [0]) }
        return hash.finalize().hexadecimal
    }
}

extension Sequence<UInt8> {
    /// The bytes as lowercase hexadecimal digits, two per byte.
    var hexadecimal: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
