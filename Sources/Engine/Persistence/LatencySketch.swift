#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// LatencySketch is a mergeable quantile sketch of poll latencies: DDSketch's logarithmic buckets (Masson,
/// Rim and Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with Relative-Error Guarantees",
/// VLDB 2019), so any quantile it answers is within 2 % of a latency that was recorded.
///
/// Values are seconds, kept as microseconds from 1 µs (anything less counts as 1 µs) to 1 hour (anything
/// more counts as 1 hour). Sketches of minutes merge into hours, and hours into any window, by adding
/// their bucket counts. ``encoded`` is the compact form the store keeps (a few bytes per distinct bucket).
public struct LatencySketch: Sendable, Hashable {
    /// Bucket index → count. Bucket `i` holds values in (γ^(i-1), γ^i] microseconds.
    public private(set) var counts: [Int: Int] = [:]
    /// The number of values recorded.
    public private(set) var count = 0

    /// The relative accuracy α of DDSketch: γ = (1 + α) / (1 − α).
    public static let relativeAccuracy = 0.02
    static let gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy)
    static let logGamma = log(gamma)
    static let maxMicroseconds = 3_600_000_000.0

    public init() {}

    /// Records one latency, in seconds.
    public mutating func add(seconds: Double) {
        self.add(bucket: Self.bucket(seconds: seconds), count: 1)
    }

    /// The bucket a latency of `seconds` counts in: ⌈log_γ(microseconds)⌉, from 0 (1 µs or less) to 551
    /// (1 hour or more).
    public static func bucket(seconds: Double) -> Int {
        let micros = min(max(seconds.isFinite ? seconds * 1_000_000 : Self.maxMicroseconds, 1), Self.maxMicroseconds)
        return Int((log(micros) / Self.logGamma).rounded(.up))
    }

    /// Counts `count` more values in bucket `bucket` (see ``bucket(seconds:)``).
    mutating func add(bucket: Int, count: Int) {
        guard count > 0 else { return }
        self.counts[bucket, default: 0] += count
        self.count += count
    }

    /// Adds every value `other` recorded.
    public mutating func merge(_ other: LatencySketch) {
        for (index, n) in other.counts { self.counts[index, default: 0] += n }
        self.count += other.count
    }

    /// The `q` quantile (0…1) in seconds, or nil when nothing was recorded. For `q` = 0.95 this is the
    /// latency 95 % of the recorded polls took at most (within 2 %).
    public func quantile(_ q: Double) -> Double? {
        guard self.count > 0 else { return nil }
        let rank = Int((min(max(q, 0), 1) * Double(self.count - 1)).rounded(.down))
        var seen = 0
        for index in self.counts.keys.sorted() {
            seen += self.counts[index] ?? 0
            if seen > rank {
                // The bucket's value with the least relative error to any value in it.
                return 2 * pow(Self.gamma, Double(index)) / (Self.gamma + 1) / 1_000_000
            }
        }
        return nil
    }

    /// The sketch as bytes: for each bucket in order, the index's distance from the previous one and the
    /// count, as unsigned LEB128 varints (the first index offset by 2^15, so small indexes stay positive).
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(self.counts.count * 3)
        var previous = -(1 << 15)
        for index in self.counts.keys.sorted() {
            Self.appendVarint(UInt64(index - previous), to: &out)
            Self.appendVarint(UInt64(self.counts[index] ?? 0), to: &out)
            previous = index
        }
        return out
    }

    /// Reads ``encoded`` back; nil when `bytes` is not a sketch.
    public init?(encoded bytes: [UInt8]) {
        var position = 0
        var index = -(1 << 15)
        while position < bytes.count {
            guard let delta = Self.readVarint(bytes, &position), let n = Self.readVarint(bytes, &position),
                delta < 1 << 20, n < 1 << 40
            else { return nil }
            index += Int(delta)
            self.counts[index, default: 0] += Int(n)
            self.count += Int(n)
        }
    }

    private static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    private static func readVarint(_ bytes: [UInt8], _ position: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.count, shift < 64 {
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
}
