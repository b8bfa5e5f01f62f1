/// Ticks is a status interval's ticks on a clock: one every `interval`, from when it is first asked. A tick
/// that falls due while nothing could run (the process or its PostgreSQL stopped, a machine suspended) is
/// not made up: the first tick after such a freeze comes at once and says how many it stands for, and the
/// next ones follow one `interval` apart from it. A tick late by less than half an interval keeps the
/// schedule. (`AsyncTimerSequence` would instead run every missed tick at once, one `report` after another
/// in the same second.)
struct Ticks<C: Clock>: Sendable where C.Duration == Duration {
    let interval: Duration
    let clock: C
    private var last: C.Instant?
    private var atOnce: Bool
    /// The tick of the ticks these take over from (a reload's), until the first tick.
    private var previous: C.Instant?

    /// - Parameters:
    ///   - atOnce: Whether the first tick comes at once (else one `interval` after it is asked).
    ///   - previous: The last tick of the ticks these take over from (``lastTick`` of a reload's pool
    ///     before): the first tick then also stands for the ticks that fell due since that one and were
    ///     missed (PostgreSQL frozen while the reload listed its URLs).
    init(every interval: Duration, clock: C, atOnce: Bool = false, after previous: C.Instant? = nil) {
        self.interval = interval
        self.clock = clock
        self.atOnce = atOnce
        self.previous = previous
    }

    /// When the last tick fell due (nil before the first), for ticks that take over from these.
    var lastTick: C.Instant? { self.last ?? self.previous }

    /// Waits for the next tick; returns how many ticks were missed before it (0 when on time), or nil when
    /// the task is cancelled.
    mutating func next() async -> Int? {
        let due =
            self.last?.advanced(by: self.interval) ?? self.clock.now.advanced(by: self.atOnce ? .zero : self.interval)
        do { try await self.clock.sleep(until: due, tolerance: nil) } catch { return nil }
        let now = self.clock.now
        var expected = due
        if self.last == nil, let previous = self.previous {
            // The first tick after a hand-over: the ticks that fell due since the earlier ticks' last were missed.
            expected = previous.advanced(by: self.interval)
        }
        let behind = expected.duration(to: now)
        let missed = behind >= self.interval ? Int(behind / self.interval) : 0
        // Late by half an interval or more (a freeze, a tick whose work took that long): the schedule starts
        // again from this tick, so the next one is a full interval after it, not moments later.
        self.last = behind * 2 >= self.interval ? now : due
        return missed
    }
}
