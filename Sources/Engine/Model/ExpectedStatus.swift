/// ExpectedStatus is the set of HTTP status codes that count as a successful poll.
public struct ExpectedStatus: Sendable, Hashable, CustomStringConvertible {
    /// Inclusive ranges of status codes.
    public var ranges: [ClosedRange<Int>]

    /// 200–399: any success or redirect, as blackbox_exporter and Gatus users expect.
    public static let `default` = ExpectedStatus(ranges: [200...399])

    /// - Parameter ranges: Inclusive ranges of status codes; a single code is a one-element range.
    public init(ranges: [ClosedRange<Int>]) {
        self.ranges = ranges
    }

    /// Whether `code` (an HTTP status code, RFC 9110 §15) counts as success.
    public func contains(_ code: Int) -> Bool {
        self.ranges.contains { $0.contains(code) }
    }

    /// The ranges as the script can write them: `200-299,304`.
    public var description: String {
        self.ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: ",")
    }
}
