import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// NameResolver turns a host name into an address with the system's `getaddrinfo` (so /etc/hosts, search
/// domains and nsswitch apply), on its own pool of threads and within the poll's timeout.
///
/// SwiftNIO runs `getaddrinfo` one call at a time per event loop (swift-nio PR #1887), so one dead name would
/// stall every new connection on that loop. Here each lookup takes one of ``threads`` threads, and a lookup
/// that outlives its deadline fails the poll with a `timeout` while its thread finishes in the background:
/// a slow name delays only polls of that name, unless more than `threads` such lookups hang at once.
public final class NameResolver: Sendable {
    /// How many lookups may run at once.
    public let threads: Int
    private let pool: NIOThreadPool

    /// - Parameter threads: The pool's size (default 16).
    public init(threads: Int = 16) {
        self.threads = threads
        self.pool = NIOThreadPool(numberOfThreads: threads)
        self.pool.start()
    }

    /// One resolver for the whole process; its threads sleep while there is nothing to resolve.
    public static let shared = NameResolver()

    /// The first address of `host` (an IP literal needs no lookup), or a ``ProbeFailure`` of kind `dns`
    /// (the name does not resolve) or `timeout` (no answer by `deadline`).
    public func resolve(_ host: String, port: Int, deadline: NIODeadline, on loop: any EventLoop) async
        -> Result<SocketAddress, ProbeFailure>
    {
        await self.resolveAll(host, port: port, deadline: deadline, on: loop).map { $0[0] }
    }

    /// Every IPv4 and IPv6 address of `host`, in `getaddrinfo`'s order (RFC 6724 §6), at least one; or a
    /// ``ProbeFailure`` as ``resolve(_:port:deadline:on:)`` gives.
    public func resolveAll(_ host: String, port: Int, deadline: NIODeadline, on loop: any EventLoop) async
        -> Result<[SocketAddress], ProbeFailure>
    {
        if let address = try? SocketAddress(ipAddress: host, port: port) { return .success([address]) }
        let once = Once<Result<[SocketAddress], ProbeFailure>>()
        return await withCheckedContinuation { continuation in
            once.set(continuation)
            let timer = loop.scheduleTask(deadline: deadline) {
                once.resume(.failure(ProbeFailure(.timeout, detail: "\(host) did not resolve within the timeout")))
            }
            self.pool.submit { state in
                guard case .active = state else {
                    once.resume(.failure(ProbeFailure(.dns, detail: "the resolver is shut down")))
                    return
                }
                once.resume(Self.lookup(host, port: port))
                timer.cancel()
            }
        }
    }

    /// The blocking lookup: every IPv4 and IPv6 address, in order.
    static func lookup(_ host: String, port: Int) -> Result<[SocketAddress], ProbeFailure> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        if status == EAI_SYSTEM, let local = ProbeFailure.local(errno: errno) { return .failure(local) }
        guard status == 0, let first = list else {
            let reason = String(cString: gai_strerror(status))
            return .failure(ProbeFailure(.dns, detail: "\(host) does not resolve: \(reason)"))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let addr = current.pointee.ai_addr {
                switch Int32(current.pointee.ai_family) {
                case AF_INET:
                    let address = addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
                    addresses.append(SocketAddress(address, host: host))
                case AF_INET6:
                    let address = addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }
                    addresses.append(SocketAddress(address, host: host))
                default: break
                }
            }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else {
            return .failure(ProbeFailure(.dns, detail: "\(host) has no IPv4 or IPv6 address"))
        }
        return .success(addresses)
    }
}

/// Once resumes a continuation with the first value given to it and ignores the rest: the lookup and its
/// deadline race, and only one may win.
final class Once<Value: Sendable>: Sendable {
    private let state = Mutex<(CheckedContinuation<Value, Never>?, Value?)>((nil, nil))

    func set(_ continuation: CheckedContinuation<Value, Never>) {
        let early = self.state.withLock { state -> Value? in
            if let value = state.1 { return value }
            state.0 = continuation
            return nil
        }
        if let early { continuation.resume(returning: early) }
    }

    func resume(_ value: Value) {
        let continuation = self.state.withLock { state -> CheckedContinuation<Value, Never>? in
            guard state.1 == nil else { return nil }
            state.1 = value
            defer { state.0 = nil }
            return state.0
        }
        continuation?.resume(returning: value)
    }
}
