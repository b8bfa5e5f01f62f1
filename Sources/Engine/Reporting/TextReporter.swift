/// TextReporter prints the seed's block: `Current state:` then one ` URL STATUS` line per URL. A URL that
/// a `check` judged degraded or down says so after its status.
public struct TextReporter: Reporter {
    let output: Output

    public init(output: Output) {
        self.output = output
    }

    public func report(_ states: [State]) async {
        var text = "Current state:\n"
        for state in states {
            text += " \(state.url) \(state.status)"
            if state.error == "check" {
                text += " (\(state.health.rawValue)\(state.detail.map { ": \($0)" } ?? ""))"
            }
            text += "\n"
        }
        self.output(text)
    }
}
