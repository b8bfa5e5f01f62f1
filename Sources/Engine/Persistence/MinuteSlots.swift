/// MinuteSlots is one URL's hour of minutes packed in fixed-size slots: the `slots` BLOB of the SQLite
/// store's `minute_slots` table (``SQLiteHistoryStore``), one row per URL per hour instead of a
/// `rollup_minute` row per minute. It holds the minutes that saw exactly one poll, which is every minute of
/// a URL polled once a minute or less often; a minute with more polls is a `rollup_minute` row (a reader
/// adds the two).
///
/// Shape: 60 slots of 4 bytes (240 bytes), slot `i` for minute `i` of the hour, each a big-endian
/// `UInt32`: 0 for a minute without a poll kept here; otherwise bits 31–30 are the poll's state (1 up,
/// 2 degraded, 3 down) and bits 29–0 its latency in microseconds (at most 1,073.741823 s, which a longer
/// latency is kept as; 0 for a down poll, whose latency is never counted). A slot is written once and
/// never grows, so a row keeps its size from its first poll to its last.
public struct MinuteSlots: Sendable, Hashable {
    /// Minutes in an hour.
    public static let count = 60
    /// The size of the BLOB, in bytes.
    public static let byteCount = 4 * count
    /// The longest latency a slot holds, in microseconds.
    static let maxMicroseconds: UInt32 = (1 << 30) - 1

    /// The encoded slots, ``byteCount`` bytes.
    public private(set) var bytes: [UInt8]

    /// An hour with no minute kept.
    public init() {
        self.bytes = Array(repeating: 0, count: Self.byteCount)
    }

    /// Reads the BLOB back; nil when it is not ``byteCount`` bytes.
    public init?(encoded bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    /// Whether no minute is kept.
    public var isEmpty: Bool { self.bytes.allSatisfy { $0 == 0 } }

    /// Keeps `rollup`, the polls of minute `minute` (0…59), when it counted exactly one poll and the slot is
    /// still empty; otherwise changes nothing and returns false (the caller keeps it as a minute row).
    public mutating func put(_ rollup: Rollup, minute: Int) -> Bool {
        guard rollup.polls == 1, (0..<Self.count).contains(minute), self.word(minute) == 0 else { return false }
        let health: UInt32 = rollup.failures > 0 ? 3 : rollup.degraded > 0 ? 2 : 1
        let micros =
            health == 3
            ? 0 : UInt32(min(max((rollup.latencyMax * 1_000_000).rounded(), 0), Double(Self.maxMicroseconds)))
        let word = health << 30 | micros
        for byte in 0..<4 { self.bytes[minute * 4 + byte] = UInt8(truncatingIfNeeded: word >> (24 - 8 * byte)) }
        return true
    }

    /// Puts each minute `other` keeps into this hour's slot for it, where that slot is empty (a kept
    /// minute keeps its poll).
    public mutating func merge(_ other: MinuteSlots) {
        for minute in 0..<Self.count where self.word(minute) == 0 {
            for byte in 0..<4 { self.bytes[minute * 4 + byte] = other.bytes[minute * 4 + byte] }
        }
    }

    /// The one poll kept for minute `minute` (0…59) as a rollup starting at `start`, or nil when the slot is
    /// empty.
    public func rollup(minute: Int, start: Int64) -> Rollup? {
        guard (0..<Self.count).contains(minute) else { return nil }
        let word = self.word(minute)
        guard word != 0 else { return nil }
        var rollup = Rollup(start: start)
        rollup.polls = 1
        switch word >> 30 {
        case 3:
            rollup.failures = 1
            return rollup
        case 2: rollup.degraded = 1
        default: break
        }
        let seconds = Double(word & Self.maxMicroseconds) / 1_000_000
        rollup.latencySum = seconds
        rollup.latencyMax = seconds
        rollup.sketch.add(seconds: seconds)
        return rollup
    }

    private func word(_ minute: Int) -> UInt32 {
        var word: UInt32 = 0
        for byte in 0..<4 { word = word << 8 | UInt32(self.bytes[minute * 4 + byte]) }
        return word
    }
}
