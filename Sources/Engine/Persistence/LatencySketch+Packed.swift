// The form PostgreSQL's rollups keep a sketch in (``PostgresStore``): a `bigint[]` that SQL merges by
// concatenation and sums by bucket, with no function of urlpoll's in the database.
extension LatencySketch {
    /// The sketch as PostgreSQL's rollups keep it: one element per bucket, `bucket × 2^32 + count`
    /// (`bucket` from 0 to 551, ``bucket(seconds:)``; `count` below 2^32), in bucket order.
    ///
    /// Two packed sketches concatenated (`a || b`) are the merged sketch, with a bucket perhaps listed twice:
    /// ``init(packed:)`` adds them up, and SQL compacts them with
    /// `SELECT e >> 32, sum(e & 4294967295) … GROUP BY 1`.
    public var packed: [Int64] {
        self.counts.keys.sorted().map { Int64($0) << 32 | Int64(min(self.counts[$0] ?? 0, Int(UInt32.max))) }
    }

    /// The one-poll sketch of a latency of `seconds`, packed: `[bucket × 2^32 + 1]`.
    public static func packed(seconds: Double) -> Int64 {
        Int64(Self.bucket(seconds: seconds)) << 32 | 1
    }

    /// Reads ``packed`` back, adding up the counts of a bucket listed more than once; elements that are
    /// no bucket (a negative or out-of-range index) are skipped.
    public init(packed elements: [Int64]) {
        self.init()
        for element in elements {
            let bucket = Int(element >> 32)
            guard (0...1_024).contains(bucket) else { continue }
            self.add(bucket: bucket, count: Int(element & 0xFFFF_FFFF))
        }
    }
}
