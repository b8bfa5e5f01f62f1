/// Seconds are the one unit on the Lua side of the boundary and `Duration` the one unit on the Swift side;
/// these are the only conversions between them.
extension Duration {
    /// A duration from a number of seconds that has already been checked to be finite and in range.
    static func seconds(checked seconds: Double) -> Duration {
        .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// The duration as fractional seconds.
    public var seconds: Double {
        let (s, attoseconds) = self.components
        return Double(s) + Double(attoseconds) / 1e18
    }
}

/// Formats seconds the way users write them in scripts: `60`, `0.5`, `1.25`.
public func formatSeconds(_ seconds: Double) -> String {
    if seconds == seconds.rounded(), abs(seconds) < 1e15 {
        return String(Int64(seconds))
    }
    return String(seconds)
}
