/// FleetView is one instance's copy of the whole fleet's states in a shared schedule (what its report,
/// `/metrics`, `/status` and `/healthz` show), kept up to date by reading only the rows written since the
/// last read (``PostgresStore/fleet(since:on:)``): at 100,000 URLs a full read takes seconds of CPU on the
/// instance and the server every `status_interval`, and delays the polls that fall due meanwhile.
///
/// A read is full (the map replaced) at the start, after ``startOver()`` (a new connection: the server may
/// have restarted, or be another one), after ``fullReadEvery`` delta reads (and up to a quarter more, at
/// random) as a safety net, and whenever the store
/// finds the previous read's horizon too far back to place rows after it. Owned by the pool's leader loop.
struct FleetView {
    /// The fleet's states, by row id.
    private(set) var states: [Int64: State] = [:]
    /// The last read's horizon; nil before the first read and after ``startOver()``.
    private var horizon: Int64?
    /// Delta reads since the last full one.
    private var deltas = 0
    /// Delta reads until the next full one: ``fullReadEvery`` and up to a quarter more, drawn at random
    /// after each full read, so that instances started together do not make their full reads in step.
    private var deltasUntilFull: Int
    /// How many delta reads in a row may follow a full one.
    let fullReadEvery: Int

    /// - Parameter fullReadEvery: Delta reads between two full ones.
    init(fullReadEvery: Int) {
        self.fullReadEvery = max(0, fullReadEvery)
        self.deltasUntilFull = self.fullReadEvery
    }

    /// Delta reads between two full ones for a read every `statusInterval`: a full read every
    /// ``fullReadInterval`` or so.
    static func fullReadEvery(statusInterval: Duration) -> Int {
        max(1, Int((fullReadInterval.seconds / max(0.001, statusInterval.seconds)).rounded(.up)))
    }

    /// How often a full read replaces the map even when every delta read worked: 10 minutes, a safety net
    /// for what a delta read cannot see (a row deleted by hand).
    static var fullReadInterval: Duration { .seconds(600) }

    /// What to pass as `since` to the next read: nil when it must be a full one.
    var since: Int64? {
        self.deltas >= self.deltasUntilFull ? nil : self.horizon
    }

    /// Makes the next read a full one (a new connection, which may reach a restarted or another server).
    mutating func startOver() {
        self.horizon = nil
    }

    /// Merges a read into the map.
    /// - Returns: The states new or changed in the map (written since the last read), and those that left
    ///   it (their rows retired, or, after a full read, no longer there).
    mutating func merge(_ read: PostgresStore.FleetRead) -> (changed: [State], gone: [State]) {
        var changed: [State] = []
        var gone: [State] = []
        if read.full {
            var next: [Int64: State] = [:]
            next.reserveCapacity(read.rows.count)
            for (id, state) in read.rows {
                guard let state else { continue }
                next[id] = state
                if self.states[id] != state { changed.append(state) }
            }
            for (id, state) in self.states where next[id] == nil { gone.append(state) }
            self.states = next
            self.deltas = 0
            self.deltasUntilFull = self.fullReadEvery + Int.random(in: 0...(self.fullReadEvery / 4))
        } else {
            for (id, state) in read.rows {
                if let state {
                    if self.states.updateValue(state, forKey: id) != state { changed.append(state) }
                } else if let left = self.states.removeValue(forKey: id) {
                    gone.append(left)
                }
            }
            self.deltas += 1
        }
        self.horizon = read.horizon
        return (changed, gone)
    }
}
