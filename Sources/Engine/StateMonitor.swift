import AsyncAlgorithms

/// StateMonitor maintains the url→State map and reports it on every tick. It alone owns the map: pollers
/// send it States, and the reporter gets a sorted copy.
public actor StateMonitor {
    private var states: [String: State] = [:]
    /// URLs in report order (sorted), fixed at creation.
    private let order: [String]
    private let reporter: any Reporter

    public init(urls: [String], reporter: any Reporter) {
        self.order = urls.sorted()
        self.reporter = reporter
    }

    /// Records the state a poller reports.
    public func update(_ state: State) {
        self.states[state.url] = state
    }

    /// Every URL's last state, in report order; URLs not yet polled are left out.
    public func snapshot() -> [State] {
        self.order.compactMap { self.states[$0] }
    }

    /// Reports the current state once.
    public func tick() async {
        let snapshot = self.snapshot()
        await self.reporter.report(snapshot)
    }

    /// Reports the current state every `interval` of `clock` until cancelled.
    public func run<C: Clock>(every interval: Duration, clock: C) async where C.Duration == Duration {
        for await _ in AsyncTimerSequence(interval: interval, clock: clock) {
            await self.tick()
        }
    }
}
