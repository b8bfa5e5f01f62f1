import NIOCore

/// ResponseHeadNormalizer makes a response that curl and Go's net/http accept readable by NIOHTTP1's
/// parser, which is strict and cannot be made lenient (NIOHTTP1 does not expose llhttp's `lenient_*` flags):
/// - a bare LF ends a line, as RFC 9112 §2.2 lets a recipient accept: it is passed on as CRLF, in the head
///   and in a chunked body's framing lines (chunk-size lines, the line end after each chunk's data, and the
///   trailer section; RFC 9112 §7.1), as curl reads them;
/// - a control byte in a head's line or a trailer line (any of 0x00–0x1F but HTAB, CR and LF, and 0x7F) is
///   passed on as a space, as RFC 9110 §5.5 lets a recipient do.
///
/// It sits in front of the response decoder on the HTTP client's connections (behind TLS on `https://`
/// ones). From each request written it reads the response's head (and the heads of any 1xx responses
/// before it), then, for a chunked body, follows the framing and passes each chunk's data on untouched; any
/// other body goes through untouched. A response to `HEAD`, a 204 and a 304 have no body (RFC 9110 §6.4.1).
final class ResponseHeadNormalizer: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Where the response read so far stands. A value, copied into a local while a read is scanned, so the
    /// per-byte work touches no class property (each of which Swift checks for exclusive access at run time).
    private var scanner = Scanner()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // A request is going out: its response's head comes next. The encoder writes the request head first.
        if case .passing = self.scanner.part {
            var answersHEAD = false
            if case .byteBuffer(let buffer) = self.unwrapOutboundIn(data) {
                answersHEAD = buffer.readableBytesView.starts(with: "HEAD ".utf8)
            }
            self.scanner.startResponse(answersHEAD: answersHEAD)
        }
        context.write(data, promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .passing = self.scanner.part {
            context.fireChannelRead(data)
            return
        }
        let input = self.unwrapInboundIn(data)
        // Most servers send well-formed lines: then the bytes go on as they came, with no copy. Only a read
        // holding a byte to rewrite is scanned again from the same point, this time writing its output.
        var scanner = self.scanner
        if scanner.passesUnchanged(input) {
            self.scanner = scanner
            context.fireChannelRead(data)
            return
        }
        scanner = self.scanner
        let output = scanner.rewrite(input, allocator: context.channel.allocator)
        self.scanner = scanner
        context.fireChannelRead(self.wrapInboundOut(output))
    }
}

extension ResponseHeadNormalizer {
    /// Which part of the response the bytes read now belong to.
    fileprivate enum Part {
        /// Not a response being normalised: the bytes go through untouched.
        case passing
        /// The head (status line and header lines).
        case head
        /// A chunk-size line (with its extensions).
        case chunkSize
        /// This many bytes of a chunk's data.
        case chunkData(Int)
        /// The line end after a chunk's data.
        case chunkEnd
        /// The trailer section, up to the blank line that ends the message.
        case trailers
    }

    /// What a byte of a line becomes.
    fileprivate enum Rewrite {
        /// Itself.
        case keep
        /// A bare LF: CR LF.
        case lineEnd
        /// A control byte: a space.
        case space
    }

    /// Scanner follows the framing of one response, byte by byte: the head's status code and whether its
    /// `Transfer-Encoding` ends in `chunked`, then a chunked body's size lines, data and trailers.
    fileprivate struct Scanner {
        var part = Part.passing
        /// Whether the request now answered was a `HEAD`, whose response has no body.
        var answersHEAD = false
        /// Whether the head's status line has ended.
        var pastStatusLine = false
        /// The status code read off the status line so far, and how many spaces came before this byte.
        var status = 0
        var spaces = 0
        /// How far the current header line matches `transfer-encoding:` (its length once the name matched;
        /// -1 once it does not).
        var matched = 0
        /// Whether the response's `Transfer-Encoding` ends in `chunked` so far (the value's last 7 bytes).
        var chunked = false
        var tail: UInt64 = 0
        /// The chunk size read off the current chunk-size line, and whether its hex digits have ended.
        var size = 0
        var sizeEnded = false
        /// The bytes on the current line so far, CR aside (0 at the blank line).
        var lineLength = 0
        var previous: UInt8 = 0

        static let transferEncoding = Array("transfer-encoding:".utf8)
        /// `chunked`, as the low 7 bytes of a UInt64, last byte lowest.
        static let chunkedTail: UInt64 = Array("chunked".utf8).reduce(0) { $0 << 8 | UInt64($1) }

        mutating func startResponse(answersHEAD: Bool) {
            self.part = .head
            self.answersHEAD = answersHEAD
            self.startHead()
        }

        /// Follows `input`'s bytes; false, as soon as one of them must be rewritten (the scanner is then
        /// part-way and must be thrown away).
        mutating func passesUnchanged(_ input: ByteBuffer) -> Bool {
            input.withUnsafeReadableBytes { bytes in
                var index = 0
                let end = bytes.count
                while index < end {
                    switch self.part {
                    case .passing:
                        return true
                    case .chunkData(let left):
                        let count = min(left, end - index)
                        index += count
                        self.part = count == left ? .chunkEnd : .chunkData(left - count)
                        self.previous = 0
                    case .head, .chunkSize, .chunkEnd, .trailers:
                        let byte = bytes[index]
                        index += 1
                        guard case .keep = self.line(byte) else { return false }
                        self.previous = byte
                    }
                }
                return true
            }
        }

        /// `input` as it should read, following its bytes.
        mutating func rewrite(_ input: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
            var output = allocator.buffer(capacity: input.readableBytes + 16)
            var index = input.readerIndex
            let end = input.writerIndex
            loop: while index < end {
                switch self.part {
                case .passing:
                    break loop
                case .chunkData(let left):
                    // Data goes through as it is.
                    let count = min(left, end - index)
                    output.writeImmutableBuffer(input.getSlice(at: index, length: count)!)
                    index += count
                    self.part = count == left ? .chunkEnd : .chunkData(left - count)
                    self.previous = 0
                case .head, .chunkSize, .chunkEnd, .trailers:
                    let byte = input.getInteger(at: index, as: UInt8.self)!
                    index += 1
                    switch self.line(byte) {
                    case .keep: output.writeInteger(byte)
                    case .lineEnd: output.writeBytes([UInt8(ascii: "\r"), byte])
                    case .space: output.writeInteger(UInt8(ascii: " "))
                    }
                    self.previous = byte
                }
            }
            if index < end { output.writeImmutableBuffer(input.getSlice(at: index, length: end - index)!) }
            return output
        }

        /// One byte of a line (head, chunk size, a chunk's line end, trailers): follows it, and says what it
        /// should read as.
        mutating func line(_ byte: UInt8) -> Rewrite {
            switch byte {
            case UInt8(ascii: "\n"):
                let bare = self.previous != UInt8(ascii: "\r")
                self.endLine()
                self.lineLength = 0
                return bare ? .lineEnd : .keep
            case UInt8(ascii: "\r"):
                return .keep
            case 0x00...0x08, 0x0A...0x1F, 0x7F:
                self.lineLength += 1
                return .space
            default:
                self.lineLength += 1
                switch self.part {
                case .head: self.read(byte)
                case .chunkSize: self.readSize(byte)
                default: break
                }
                return .keep
            }
        }
        /// Reads the status code, and whether `Transfer-Encoding` ends in `chunked`, off a head's byte.
        mutating func read(_ byte: UInt8) {
            guard self.pastStatusLine else {
                if byte == UInt8(ascii: " ") {
                    self.spaces += 1
                } else if self.spaces == 1, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), self.status < 1000 {
                    self.status = self.status * 10 + Int(byte - UInt8(ascii: "0"))
                }
                return
            }
            let name = Self.transferEncoding
            let lower = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
            if self.matched < 0 {
                return
            } else if self.matched < name.count {
                // Still reading the field name (ASCII, compared without case).
                let matches = self.matched == self.lineLength - 1 && lower == name[self.matched]
                self.matched = matches ? self.matched + 1 : -1
            } else if byte != UInt8(ascii: " "), byte != UInt8(ascii: "\t") {
                self.tail = (self.tail << 8 | UInt64(lower)) & 0x00FF_FFFF_FFFF_FFFF
            }
        }

        /// Reads a chunk size's hex digits; whatever follows them (extensions, whitespace) is passed on as sent.
        mutating func readSize(_ byte: UInt8) {
            guard !self.sizeEnded else { return }
            let digit: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = Int(byte - UInt8(ascii: "A")) + 10
            default:
                self.sizeEnded = true
                return
            }
            // Past 2^56 it is no size a poll reads: the decoder judges it, untouched from here on.
            guard self.size < 1 << 56 else {
                self.part = .passing
                return
            }
            self.size = self.size * 16 + digit
        }

        mutating func startHead() {
            self.pastStatusLine = false
            self.status = 0
            self.spaces = 0
            self.lineLength = 0
            self.previous = 0
            self.chunked = false
        }

        mutating func startHeaderLine() {
            self.matched = 0
            self.tail = 0
        }

        mutating func endLine() {
            switch self.part {
            case .head:
                guard self.pastStatusLine else {
                    self.pastStatusLine = true
                    self.startHeaderLine()
                    return
                }
                guard self.lineLength == 0 else {
                    if self.matched == Self.transferEncoding.count { self.chunked = self.tail == Self.chunkedTail }
                    self.startHeaderLine()
                    return
                }
                // The blank line: the head ends. A 1xx head is followed by another head.
                if (100..<200).contains(self.status) {
                    self.startHead()
                } else if self.chunked, !self.answersHEAD, self.status != 204, self.status != 304 {
                    self.startChunk()
                } else {
                    self.part = .passing
                }
            case .chunkSize:
                if self.size == 0 {
                    self.part = .trailers
                } else {
                    self.part = .chunkData(self.size)
                }
            case .chunkEnd:
                self.startChunk()
            case .trailers:
                if self.lineLength == 0 { self.part = .passing }
            case .passing, .chunkData:
                break
            }
        }

        mutating func startChunk() {
            self.part = .chunkSize
            self.size = 0
            self.sizeEnded = false
        }
    }
}
