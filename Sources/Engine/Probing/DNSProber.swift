import CResolv
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// DNSProber polls `dns://[server[:port]]/name?type=TYPE`: one query over UDP to the URL's server (or the
/// first name server of /etc/resolv.conf), within the URL's timeout, with no retries.
///
/// The messages are built and parsed by glibc's libresolv (`res_nmkquery`, `ns_initparse`, `ns_parserr`,
/// `ns_sprintrr`; RFC 1035 §4); only the one datagram each way is sent with SwiftNIO, so a dead server costs
/// its URL's timeout and nothing else (no thread waits on it). The reply is `res.rcode` and `res.answers`;
/// it is up on NOERROR with at least one answer, or, when the URL sets `expect = { "NOERROR", "NXDOMAIN" }`,
/// on any of those codes. A truncated reply (TC) is judged on the answers it holds; no TCP retry is made.
public struct DNSProber: Prober {
    private let group: any EventLoopGroup
    private static let system = SystemResolverConfiguration()

    public init(group: any EventLoopGroup) {
        self.group = group
    }

    public func probe(_ target: Target, settings: Settings) async -> ProbeResult {
        let start = ContinuousClock.now
        let timeout = settings.timeout(for: target)
        let query: DNSQuery
        switch DNSQuery.parse(target.url) {
        case .success(let q): query = q
        case .failure(let error): return .failed(.badURL, error.message)
        }
        let server: SocketAddress
        do {
            if let host = query.server {
                server = try SocketAddress(ipAddress: host, port: query.port)
            } else if let first = Self.system.server {
                server = first
            } else {
                return .failed(.dns, "no IPv4 name server in /etc/resolv.conf")
            }
        } catch {
            return .failed(.badURL, "the server \(query.server ?? "") is not an IP address")
        }
        guard let message = Self.system.message(for: query) else {
            return .failed(.badURL, "cannot build a query for \"\(query.name)\" (a label longer than 63 bytes?)")
        }
        let named = "\(server.ipAddress ?? ""):\(server.port ?? 0)"
        let loop = self.group.next()
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.seconds * 1e9))
        let reply = loop.makePromise(of: [UInt8].self)
        let id = UInt16(message[0]) << 8 | UInt16(message[1])
        let bound = DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ReplyHandler(server: server, id: id, promise: reply))
                }
            }
            // Connected, so the kernel drops datagrams from anyone else and a closed port is refused at once.
            .connect(to: server)
        bound.whenSuccess { channel in
            let envelope = AddressedEnvelope(remoteAddress: server, data: channel.allocator.buffer(bytes: message))
            channel.writeAndFlush(envelope).whenFailure { reply.fail($0) }
        }
        bound.whenFailure { reply.fail($0) }
        let timer = loop.scheduleTask(deadline: deadline) {
            reply.fail(
                ProbeFailure(.timeout, detail: "no answer from \(named) within \(formatSeconds(timeout.seconds)) s"))
        }
        defer {
            timer.cancel()
            bound.whenSuccess { $0.close(promise: nil) }
        }
        let bytes: [UInt8]
        do {
            bytes = try await reply.futureResult.get()
        } catch {
            let failure = TCPProber.inWords(HTTPProber.classify(error, timeout: timeout), "the DNS server \(named)")
            return ProbeResult(.failure(failure), latency: ContinuousClock.now - start)
        }
        let latency = ContinuousClock.now - start
        guard let parsed = DNSReply(bytes) else {
            return ProbeResult(
                .failure(ProbeFailure(.badResponse, detail: "the DNS reply does not parse")), latency: latency)
        }
        let facts = DNSFacts(
            rcode: parsed.rcode, answers: parsed.answers, server: named, authorityCount: parsed.authorityCount,
            additionalCount: parsed.additionalCount)
        return ProbeResult(.reply(Self.judge(parsed, target: target, query: query)), latency: latency, dns: facts)
    }

    /// The default verdict: `expect`'s codes, or NOERROR with at least one answer.
    static func judge(_ reply: DNSReply, target: Target, query: DNSQuery) -> ProbeResult.Reply {
        if let expected = target.rcodes {
            guard expected.contains(reply.rcode) else {
                return .init(
                    reply.rcode, health: .down, error: "rcode",
                    detail: "\(reply.rcode) is not in expect \(expected.joined(separator: ","))")
            }
            return .init(reply.rcode)
        }
        guard reply.rcode == "NOERROR" else {
            return .init(
                reply.rcode, health: .down, error: "rcode", detail: "\(query.name) \(query.type): \(reply.rcode)")
        }
        guard !reply.answers.isEmpty else {
            return .init(
                reply.rcode, health: .down, error: "no_answer",
                detail: "\(query.name) has no \(query.type) record"
                    + (reply.truncated ? " (the reply was truncated)" : ""))
        }
        return .init(reply.rcode)
    }
}

/// SystemResolverConfiguration is glibc's resolver state, read once from /etc/resolv.conf: the first name
/// server, and the options `res_nmkquery` needs (recursion desired). Building a query takes a lock, since
/// the state is not thread-safe.
final class SystemResolverConfiguration: Sendable {
    /// The first IPv4 name server of /etc/resolv.conf, or `nil` when it lists none.
    let server: SocketAddress?
    private let state: Mutex<UnsafeMutablePointer<__res_state>>

    init() {
        let pointer = UnsafeMutablePointer<__res_state>.allocate(capacity: 1)
        pointer.initialize(to: __res_state())
        _ = up_res_ninit(pointer)
        var address = sockaddr_in()
        self.server = up_res_first_server(pointer, &address) != 0 ? SocketAddress(address, host: "") : nil
        self.state = Mutex(pointer)
    }

    /// A query message for `query` (RFC 1035 §4.1, recursion desired, a random ID), or `nil` when the name
    /// cannot be encoded.
    func message(for query: DNSQuery) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let length = self.state.withLock { state in
            buffer.withUnsafeMutableBufferPointer {
                up_res_nmkquery(state, query.typeCode, query.name, $0.baseAddress, Int32($0.count))
            }
        }
        guard length > 12 else { return nil }
        return Array(buffer[..<Int(length)])
    }
}

/// DNSReply is a parsed reply message: its response code and answer records, read with libresolv.
struct DNSReply {
    var rcode: String
    var answers: [DNSFacts.Answer]
    var truncated: Bool
    /// Records in the authority and additional sections (counted, not read).
    var authorityCount: Int
    var additionalCount: Int

    /// The names of the response codes (RFC 1035 §4.1.1, RFC 2136, RFC 6895 §2.3).
    static let rcodes = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE",
    ]

    /// Parses `bytes`, or `nil` when they are not a DNS message.
    init?(_ bytes: [UInt8]) {
        var msg = ns_msg()
        var answers: [DNSFacts.Answer] = []
        let parsed: Bool = bytes.withUnsafeBufferPointer { buffer in
            guard ns_initparse(buffer.baseAddress, Int32(buffer.count), &msg) == 0 else { return false }
            let count = up_ns_msg_count(&msg, ns_s_an)
            for i in 0..<count {
                var rr = ns_rr()
                guard ns_parserr(&msg, ns_s_an, i, &rr) == 0 else { return false }
                let type = up_ns_rr_type(&rr)
                var text = [CChar](repeating: 0, count: 2048)
                let length = up_ns_sprintrr(&msg, &rr, &text, text.count)
                let line = length > 0 ? text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : ""
                answers.append(
                    DNSFacts.Answer(
                        name: String(cString: up_ns_rr_name(&rr)),
                        type: Self.typeName(type), ttl: Int(up_ns_rr_ttl(&rr)),
                        data: Self.data(of: line, type: Self.typeName(type))))
            }
            return true
        }
        guard parsed else { return nil }
        let code = Int(up_ns_msg_rcode(&msg))
        self.rcode = code < Self.rcodes.count ? Self.rcodes[code] : "RCODE\(code)"
        self.answers = answers
        self.truncated = up_ns_msg_tc(&msg) != 0
        self.authorityCount = Int(up_ns_msg_count(&msg, ns_s_ns))
        self.additionalCount = Int(up_ns_msg_count(&msg, ns_s_ar))
    }

    static func typeName(_ code: Int32) -> String {
        DNSQuery.types.first { $0.code == code }?.name ?? "TYPE\(code)"
    }

    /// The rdata of one `ns_sprintrr` line (`name. TTL IN TYPE rdata`, SOA over several lines with comments),
    /// on one line; a TXT record's single string without its quotes.
    static func data(of line: String, type: String) -> String {
        let withoutComments = line.split(separator: "\n").map { $0.prefix { $0 != ";" } }.joined(separator: " ")
        let words = withoutComments.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "(" || $0 == ")" })
        guard let at = words.firstIndex(where: { $0 == type }), at >= 2 else { return "" }
        var data = words[(at + 1)...].joined(separator: " ")
        if type == "TXT", data.hasPrefix("\""), data.hasSuffix("\""), data.count >= 2,
            !data.dropFirst().dropLast().contains("\"")
        {
            data = String(data.dropFirst().dropLast())
        }
        return data
    }
}

/// ReplyHandler takes the first datagram from `server` with the query's `id` and completes `promise` with
/// it; anything else (a late reply to an earlier query, a spoofed source) is ignored. It runs on its
/// channel's event loop.
final class ReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let server: SocketAddress
    private let id: UInt16
    private let promise: EventLoopPromise<[UInt8]>

    init(server: SocketAddress, id: UInt16, promise: EventLoopPromise<[UInt8]>) {
        self.server = server
        self.id = id
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = self.unwrapInboundIn(data)
        guard envelope.remoteAddress.port == self.server.port,
            envelope.remoteAddress.ipAddress == self.server.ipAddress, envelope.data.readableBytes >= 12,
            envelope.data.getInteger(at: envelope.data.readerIndex, as: UInt16.self) == self.id
        else { return }
        self.promise.succeed(Array(envelope.data.readableBytesView))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.promise.fail(error)
    }
}
