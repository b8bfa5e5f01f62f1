#if canImport(Glibc)
    import Glibc
#endif

/// FileLimit raises the process's soft limit on open files (`RLIMIT_NOFILE`) to its hard limit at start, as
/// Go's runtime does since Go 1.19 (the soft limit of 1024 is a relic of select(2); urlpoll uses epoll via
/// SwiftNIO, which has no such bound). Source: getrlimit(2), setrlimit(2).
enum FileLimit {
    /// Raises the soft limit to the hard limit; returns the soft limit now in force (nil if unknown).
    @discardableResult
    static func raise() -> UInt64? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_max) }
        }
        return UInt64(limit.rlim_cur)
    }

    /// The soft limit on open files now in force, or nil if unknown.
    static func current() -> UInt64? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return UInt64(limit.rlim_cur)
    }

    /// Whether every descriptor the limit allows is in use: opening one more fails with `EMFILE` (or the
    /// system's table is full, `ENFILE`). Source: open(2).
    static func exhausted() -> Bool {
        let descriptor = open("/dev/null", O_RDONLY)
        guard descriptor < 0 else {
            close(descriptor)
            return false
        }
        return errno == EMFILE || errno == ENFILE
    }

    /// Why the system's trusted certificates (read at start for `tls://` and `https://` polls) could not be
    /// read, in words: most likely no descriptor was free (a script that holds every file the limit allows).
    static func trustRootsUnreadable(limit: UInt64?) -> String {
        guard Self.exhausted() else {
            return
                "the system's trusted certificates (for tls:// and https:// polls) could not be read from /etc/ssl/certs"
        }
        let limit = limit.map { " (\($0), ulimit -n)" } ?? ""
        return
            "every file descriptor the open-file limit\(limit) allows is in use (EMFILE), so the system's trusted certificates (for tls:// and https:// polls) could not be read; raise the limit or have the script hold fewer files open"
    }

    /// The descriptors polling may hold at once: a connection per poll in flight and per idle kept-alive
    /// connection, plus a margin for the process's own (the state file, the alert client, the logs).
    static func needed(urls: Int, pollers: Int, idleConnections: Int) -> UInt64 {
        UInt64(min(urls, pollers + idleConnections) + 64)
    }

    /// The start-up warning when `limit` is below what `urls` on `pollers` may need, else nil.
    static func warning(limit: UInt64, urls: Int, pollers: Int, idleConnections: Int) -> String? {
        let needed = Self.needed(urls: urls, pollers: pollers, idleConnections: idleConnections)
        guard limit < needed else { return nil }
        return
            "the open-file limit is \(limit) (ulimit -n), below the \(needed) that \(urls.counted("URL")) on \(pollers.counted("poller")) may need; polls that find no free descriptor wait and are retried: raise the hard limit (ulimit -Hn, or LimitNOFILE= under systemd)"
    }
}
