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
}
