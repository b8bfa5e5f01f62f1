/// JSONChangePrinter prints each change as a JSON line with `"event": "change"`.
public struct JSONChangePrinter: StateObserver {
    let output: Output

    public init(output: Output) {
        self.output = output
    }

    public func changed(_ state: State, previous: State?) async {
        self.output(JSONReporter.line(event: "change", state, previous: .some(previous)) + "\n")
    }
}
