/// Reporter receives the monitor's full state on every tick, sorted by URL.
public protocol Reporter: Sendable {
    func report(_ states: [State]) async
}
