import Foundation

/// Dnsmasq is Debian's dnsmasq serving fixed records on 127.0.0.1 on a free high port, started for one
/// test and stopped by its PID (`apt-get install dnsmasq-base`; .ci/run installs it).
///
/// Records: `www.urlpoll.test` A 192.0.2.10 and AAAA 2001:db8::10, `urlpoll.test` MX 10
/// mail.urlpoll.test, `txt.urlpoll.test` TXT "v=spf1 -all", `alias.urlpoll.test` CNAME www.urlpoll.test.
/// Any other name under urlpoll.test is NXDOMAIN; nothing is forwarded (`--no-resolv`).
final class Dnsmasq: Sendable {
    let port: Int
    private let pid: pid_t

    /// Starts dnsmasq on a free port. A port free for UDP a moment ago can be taken for TCP (dnsmasq binds
    /// both) by another process meanwhile, and dnsmasq then exits at once: it is tried on up to 5 ports.
    init(extra: [String] = []) throws {
        var attempt = 0
        while true {
            attempt += 1
            do {
                (self.port, self.pid) = try Self.start(extra: extra)
                return
            } catch DnsmasqError.exited where attempt < 5 {
                continue
            }
        }
    }

    private static func start(extra: [String]) throws -> (port: Int, pid: pid_t) {
        // A UDP port that was free a moment ago; dnsmasq binds the same number for TCP as well.
        let (probe, port) = try bindLoopback(type: Int32(SOCK_DGRAM.rawValue))
        close(probe)
        let arguments =
            [
                "/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--no-poll", "--bind-interfaces", "--listen-address=127.0.0.1", "--port=\(port)", "--user=root",
                "--pid-file=", "--log-facility=/dev/null",
                "--host-record=www.urlpoll.test,192.0.2.10,2001:db8::10",
                "--mx-host=urlpoll.test,mail.urlpoll.test,10", "--txt-record=txt.urlpoll.test,v=spf1 -all",
                "--cname=alias.urlpoll.test,www.urlpoll.test", "--local=/urlpoll.test/",
            ] + extra
        // posix_spawn, not Foundation's Process: Process reaps its children one blocking wait at a time, so a
        // long-lived child would keep the CLI processes the same test starts from ever being seen to exit.
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let status = posix_spawn(&pid, arguments[0], nil, nil, argv, environ)
        guard status == 0 else { throw DnsmasqError.exited }
        do {
            try Self.waitUntilListening(port: port, pid: pid)
        } catch {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            throw error
        }
        return (port, pid)
    }

    var server: String { "127.0.0.1:\(self.port)" }

    /// Waits (up to 5 s) until dnsmasq answers a query over UDP on `port` and accepts on TCP, so the first
    /// query is not lost. A TCP connect alone is not enough: when the TCP port was taken by another process,
    /// the connect reached that one while dnsmasq exited, and every UDP query was then refused.
    private static func waitUntilListening(port: Int, pid: Int32) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        // www.urlpoll.test A, recursion desired (RFC 1035 §4.1).
        let query: [UInt8] =
            [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3] + Array("www".utf8) + [7] + Array("urlpoll".utf8)
            + [4] + Array("test".utf8) + [0, 0, 1, 0, 1]
        func connected(_ type: Int32) -> Int32? {
            let fd = socket(AF_INET, type, 0)
            var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let ok = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            if ok { return fd }
            close(fd)
            return nil
        }
        let deadline = Date() + 5
        while Date() < deadline {
            var answered = false
            if let udp = connected(Int32(SOCK_DGRAM.rawValue)) {
                var reply = [UInt8](repeating: 0, count: 512)
                if send(udp, query, query.count, 0) == query.count, recv(udp, &reply, reply.count, 0) > 0,
                    reply[0] == 0x12, reply[1] == 0x34
                {
                    answered = true
                }
                close(udp)
            }
            if answered, let tcp = connected(Int32(SOCK_STREAM.rawValue)) {
                close(tcp)
                return
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { throw DnsmasqError.exited }
            usleep(20_000)
        }
        throw DnsmasqError.notListening
    }

    /// Stops dnsmasq by its PID, and reaps it.
    func stop() {
        kill(self.pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(self.pid, &status, 0)
    }
}

enum DnsmasqError: Error {
    case exited
    case notListening
}
