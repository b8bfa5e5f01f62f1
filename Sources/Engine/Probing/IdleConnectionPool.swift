import NIOCore
import Synchronization

/// Where an HTTP connection goes, and how it was secured: the pool keeps idle connections per key, so a
/// request only ever reuses a connection made for the same scheme, host, port and TLS options.
struct ConnectionKey: Hashable, Sendable {
    /// `http` or `https`.
    var scheme: String
    var host: String
    var port: Int
    /// For `https`: what the connection's handshake sent and checked (the name for SNI and verification,
    /// whether the chain was verified, the roots), with `cert_expiry` left out (it judges the facts, not the
    /// connection); `nil` for `http`.
    var tls: TLSOptions?
}

/// IdleConnectionPool keeps the HTTP client's idle kept-alive connections, per host and in all, so
/// the next poll of a host reuses one and polling thousands of hosts does not hold a socket open for each.
final class IdleConnectionPool: Sendable {
    /// The idle connections by host, and how many there are in all.
    private struct Idle {
        var byHost: [ConnectionKey: [any Channel]] = [:]
        var count = 0
    }

    private let idle = Mutex(Idle())
    /// Idle connections kept per host; a connection coming back to a full host is closed.
    private let maximumPerHost: Int
    /// Idle connections kept in all, so that polling many hosts does not hold a socket open per host.
    private let maximum: Int

    init(maximumPerHost: Int, maximum: Int) {
        self.maximumPerHost = maximumPerHost
        self.maximum = maximum
    }

    /// The number of idle connections kept.
    var count: Int { self.idle.withLock { $0.count } }

    /// Closes every idle connection.
    func closeAll() {
        let all = self.idle.withLock { idle in
            defer { idle = Idle() }
            return idle.byHost.values.flatMap { $0 }
        }
        for channel in all { channel.close(promise: nil) }
    }

    /// An open idle connection to `key`, taken out of the pool; closed ones found on the way are closed.
    /// One on the caller's event loop comes first (a poll runs on its poller's loop: its exchange then
    /// stays on that thread), else the one put back last.
    func take(_ key: ConnectionKey) -> (any Channel)? {
        var closed: [any Channel] = []
        let channel: (any Channel)? = self.idle.withLock { idle in
            if let index = idle.byHost[key]?.lastIndex(where: { $0.eventLoop.inEventLoop && $0.isActive }) {
                idle.count -= 1
                let channel = idle.byHost[key]!.remove(at: index)
                if idle.byHost[key]!.isEmpty { idle.byHost[key] = nil }
                return channel
            }
            while let last = idle.byHost[key]?.popLast() {
                idle.count -= 1
                if idle.byHost[key]!.isEmpty { idle.byHost[key] = nil }
                if last.isActive { return last }
                closed.append(last)
            }
            return nil
        }
        for channel in closed { channel.close(promise: nil) }
        return channel
    }

    /// Keeps `channel` for the next request to `key`, or closes it when the pool is full for that host or
    /// in all.
    func put(_ channel: any Channel, _ key: ConnectionKey) {
        let kept = self.idle.withLock { idle in
            // Checked under the lock that `forget` takes: a connection that began closing before it got
            // here (its idle timeout can fire first) is not kept, and one that closes later is forgotten.
            guard channel.isActive, idle.count < self.maximum,
                idle.byHost[key, default: []].count < self.maximumPerHost
            else { return false }
            idle.byHost[key, default: []].append(channel)
            idle.count += 1
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    /// Drops `channel` from the pool, if it is there: it closed while idle.
    func forget(_ channel: any Channel, _ key: ConnectionKey) {
        self.idle.withLock { idle in
            guard let index = idle.byHost[key]?.firstIndex(where: { $0 === channel }) else { return }
            idle.byHost[key]!.remove(at: index)
            idle.count -= 1
            if idle.byHost[key]!.isEmpty { idle.byHost[key] = nil }
        }
    }
}
