/// Header is one request header name and value.
public struct Header: Sendable, Hashable {
    /// The field name, as given (RFC 9110 §5.1: compared case-insensitively).
    public var name: String
    /// The field value, as given.
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    /// Why this field cannot be sent, in words, or nil when it can: a name is a token (RFC 9110 §5.6.2:
    /// letters, digits and ``!#$%&'*+-.^_`|~``), and a value holds no CR, LF or NUL (RFC 9110 §5.5), which
    /// would end the field early or split the request.
    public var problem: String? {
        if self.name.isEmpty || !self.name.utf8.allSatisfy(Self.isTokenByte) {
            return "\(String(reflecting: self.name)) is not a header name (RFC 9110 §5.6.2 allows letters, digits "
                + "and !#$%&'*+-.^_`|~)"
        }
        if self.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) {
            return "the value of '\(self.name)' holds a line break or NUL, which HTTP does not allow (RFC 9110 §5.5)"
        }
        return nil
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
