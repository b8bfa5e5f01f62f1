import CompressNIO
import NIOCore

// The exposition gzipped, for a scraper that sends `Accept-Encoding: gzip` (Prometheus does), with
// compress-nio (zlib).
extension Exposition {
    /// `bytes` as one gzip member (RFC 1952), at zlib's fastest level: for 100,000 URLs about a tenth of a
    /// second and a seventeenth of the size (the design notes' measure; `bench/` has the figure), where a
    /// scrape's time is what Prometheus waits for.
    /// - Throws: compress-nio's error if zlib fails (it does not for a buffer sized by its own bound).
    public static func gzipped(_ bytes: [UInt8]) throws -> ByteBuffer {
        var buffer = ByteBuffer(bytes: bytes)
        return try buffer.compress(with: .gzip(configuration: .init(compressionLevel: .fastestCompression)))
    }
}
