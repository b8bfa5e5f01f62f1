/// Checker turns a response into a verdict.
public protocol Checker: Sendable {
    /// The verdict on `result` for `target`, or nil to let `expect` decide.
    func check(_ target: Target, _ result: ProbeResult) async -> Verdict?
}
