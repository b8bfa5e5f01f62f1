/// ProbeFailure is why a poll got no usable response: a short, bounded kind for reports, alerts and
/// metrics labels, and the full text in `detail`.
public struct ProbeFailure: Error, Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The connection was refused.
        case refused
        /// No complete response within the timeout.
        case timeout
        /// The connection was reset or closed before a complete response.
        case reset
        /// The host name did not resolve.
        case dns
        /// No route to the address.
        case unreachable
        /// The TLS handshake or certificate check failed.
        case tls
        /// Too many redirects, or a redirect loop.
        case redirect
        /// The server sent something that is not valid HTTP.
        case badResponse = "bad_response"
        /// The URL cannot be requested.
        case badURL = "bad_url"
        /// Anything else.
        case error
    }

    /// The short kind: reports, JSON `error` and alerts use it.
    public var kind: Kind
    /// What went wrong, in words, for `detail`.
    public var detail: String

    public init(_ kind: Kind, detail: String) {
        self.kind = kind
        self.detail = detail
    }
}
