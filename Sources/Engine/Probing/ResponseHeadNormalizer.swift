import NIOCore

/// ResponseHeadNormalizer makes a response head that curl and Go's net/http accept readable by NIOHTTP1's
/// parser, which is strict and cannot be made lenient (NIOHTTP1 does not expose llhttp's `lenient_*` flags):
/// - a bare LF ends a line, as RFC 9112 §2.2 lets a recipient accept: it is passed on as CRLF;
/// - a control byte in a header line (any of 0x00–0x1F but HTAB, CR and LF, and 0x7F) is passed on as a
///   space, as RFC 9110 §5.5 lets a recipient do.
///
/// It sits in front of the response decoder on the plain-HTTP client's connections and only touches the
/// head: from each request written until the blank line that ends the head of a final (non-1xx) response;
/// the body goes through untouched.
final class ResponseHeadNormalizer: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Whether the bytes read now belong to a response head.
    private var inHead = false
    /// Whether the head's status line has ended.
    private var pastStatusLine = false
    /// The first bytes of the status line (enough to read a 1xx code).
    private var statusLine: [UInt8] = []
    /// The bytes on the current line so far, CR aside (0 at the blank line).
    private var lineLength = 0
    private var previous: UInt8 = 0

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // A request is going out: its response's head comes next.
        if !self.inHead {
            self.inHead = true
            self.startHead()
        }
        context.write(data, promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.inHead else {
            context.fireChannelRead(data)
            return
        }
        let input = self.unwrapInboundIn(data)
        var output = context.channel.allocator.buffer(capacity: input.readableBytes + 16)
        var index = input.readerIndex
        let end = input.writerIndex
        while index < end, self.inHead {
            let byte = input.getInteger(at: index, as: UInt8.self)!
            index += 1
            switch byte {
            case UInt8(ascii: "\n"):
                if self.previous != UInt8(ascii: "\r") { output.writeInteger(UInt8(ascii: "\r")) }
                output.writeInteger(byte)
                self.endLine()
            case UInt8(ascii: "\r"):
                output.writeInteger(byte)
            case 0x00...0x08, 0x0A...0x1F, 0x7F:
                output.writeInteger(UInt8(ascii: " "))
                self.lineLength += 1
            default:
                output.writeInteger(byte)
                if !self.pastStatusLine, self.statusLine.count < 16 { self.statusLine.append(byte) }
                self.lineLength += 1
            }
            self.previous = byte
        }
        if index < end { output.writeImmutableBuffer(input.getSlice(at: index, length: end - index)!) }
        context.fireChannelRead(self.wrapInboundOut(output))
    }

    private func startHead() {
        self.pastStatusLine = false
        self.statusLine = []
        self.lineLength = 0
        self.previous = 0
    }

    private func endLine() {
        defer { self.lineLength = 0 }
        guard self.pastStatusLine else {
            self.pastStatusLine = true
            return
        }
        guard self.lineLength == 0 else { return }
        // The blank line: the head ends. A 1xx head is followed by another head.
        let status = self.statusLine.split(separator: UInt8(ascii: " ")).dropFirst().first
        self.inHead = status?.first == UInt8(ascii: "1")
        if self.inHead { self.startHead() }
    }
}
