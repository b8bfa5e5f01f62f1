#if canImport(Glibc)
    import Glibc
#endif

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
        /// urlpoll itself could not make the poll: it ran out of file descriptors (`EMFILE`, the process's
        /// open-file limit, `ulimit -n`; or `ENFILE`, the system's; open(2), socket(2)). Not the target's
        /// failure: ``PollerPool`` records no State for it and polls the URL again after
        /// ``PollerPool/localRetryDelay``.
        case local
    }

    /// The short kind: reports, JSON `error` and alerts use it.
    public var kind: Kind
    /// What went wrong, in words, for `detail`.
    public var detail: String

    public init(_ kind: Kind, detail: String) {
        self.kind = kind
        self.detail = detail
    }

    /// Whether urlpoll itself, not the target, failed the poll (``Kind/local``).
    public var isLocal: Bool { self.kind == .local }

    /// The ``Kind/local`` failure for an `errno` that says urlpoll is out of file descriptors: `EMFILE`
    /// (the process's limit, `RLIMIT_NOFILE`) or `ENFILE` (the system's), as socket(2), accept(2), open(2) and
    /// getaddrinfo(3) (through `EAI_SYSTEM`) report them; nil for any other errno. Every prober classifies its
    /// errors through this, so a probe of any kind that hits the limit is urlpoll's problem, not the target's.
    public static func local(errno code: Int32) -> ProbeFailure? {
        guard code == EMFILE || code == ENFILE else { return nil }
        let which = code == EMFILE ? "EMFILE, its own open-file limit" : "ENFILE, the system's open-file limit"
        return ProbeFailure(.local, detail: "urlpoll has run out of file descriptors (\(which))")
    }
}
