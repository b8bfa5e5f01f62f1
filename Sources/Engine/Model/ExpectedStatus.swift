/// ExpectedStatus is the set of HTTP status codes that count as a successful poll.
public struct ExpectedStatus: Sendable, Hashable, CustomStringConvertible {
    /// Inclusive ranges of status codes.
    public var ranges: [ClosedRange<Int>]

    /// 200–399: any success or redirect, as blackbox_exporter and Gatus users expect.
    public static let `default` = ExpectedStatus(ranges: [200...399])

    public init(ranges: [ClosedRange<Int>]) {
        self.ranges = ranges
    }

    public func contains(_ code: Int) -> Bool {
        self.ranges.contains { $0.contains(code) }
    }

    public var description: String {
        self.ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: ",")
    }
}
