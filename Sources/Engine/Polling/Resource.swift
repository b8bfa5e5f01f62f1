/// Resource represents a URL to be polled by this program, and what its polls have shown so far.
///
/// As in the seed, a Resource is moved, never shared: it travels from the `pending` channel to a poller,
/// from the poller to `complete`, and from there to its Sleep, which queues it again.
///
/// A Resource is 96 bytes (`MemoryLayout<Resource>.stride`): 100,000 sleep in the timer queue at a time, so its
/// times are Int64 nanoseconds and its counts as small as they can be (ResourceTests).
public struct Resource: Sendable {
    /// The URL and its options, as the script declared them.
    public let target: Target
    /// Polls so far.
    public private(set) var polls = 0
    /// The state after the last poll.
    public private(set) var state: State?
    /// The last response's headers, kept only when the target captures them.
    public private(set) var headers: [Header] = []
    private var dueNanoseconds: Int64 = 0
    private var finishedNanoseconds: Int64 = 0
    private var latenessNanoseconds: Int64 = 0
    private var lastSleepNanoseconds = Self.noSleep
    private var storedErrorCount: UInt32 = 0
    /// Whether the last poll was not made because urlpoll ran out of file descriptors (``ProbeFailure/Kind/local``):
    /// it is polled again after ``PollerPool/localRetryDelay``, not after its Sleep.
    var retrying = false

    private static let noSleep = Int64.min

    /// Consecutive failed polls.
    public private(set) var errorCount: Int {
        get { Int(self.storedErrorCount) }
        set { self.storedErrorCount = UInt32(clamping: newValue) }
    }

    /// The last sleep Sleep applied, if any (to the nanosecond).
    public var lastSleep: Duration? {
        get { self.lastSleepNanoseconds == Self.noSleep ? nil : .nanoseconds(self.lastSleepNanoseconds) }
        set {
            self.lastSleepNanoseconds = newValue.map { max(Self.noSleep + 1, $0.nanosecondsClamped) } ?? Self.noSleep
        }
    }

    /// When this poll was planned to start, as an offset on the pool's clock from the pool's start.
    var due: Duration {
        get { .nanoseconds(self.dueNanoseconds) }
        set { self.dueNanoseconds = newValue.nanosecondsClamped }
    }

    /// When the poll in progress finished, as an offset on the pool's clock from the pool's start: its Sleep
    /// counts from here, not from whenever the backoff policy answers.
    var finished: Duration {
        get { .nanoseconds(self.finishedNanoseconds) }
        set { self.finishedNanoseconds = newValue.nanosecondsClamped }
    }

    /// How late the poll in progress started.
    var lateness: Duration {
        get { .nanoseconds(self.latenessNanoseconds) }
        set { self.latenessNanoseconds = newValue.nanosecondsClamped }
    }

    /// A Resource not yet polled: no errors, no state, due at once.
    public init(_ target: Target) {
        self.target = target
    }

    /// Resumes from a state saved earlier (a reload keeps each kept URL's counts).
    public init(_ target: Target, resuming state: State?) {
        self.target = target
        if let state {
            self.errorCount = state.errorCount
            self.polls = state.polls
            self.state = state
        }
    }

    /// Records one poll's result at wall-clock time `now` and returns the new State. A `verdict` from a
    /// `check` hook decides the health of a response; without one, `expect` does, and then the result's
    /// ``ProbeResult/warning`` (an `https://` certificate within `cert_expiry` days) makes it degraded.
    @discardableResult
    public mutating func record(_ result: ProbeResult, verdict: Verdict? = nil, at now: Double) -> State {
        self.polls += 1
        let status: String
        var code: Int?
        var health = Health.up
        var error: String?
        var detail: String?
        switch result.outcome {
        case .response(let c, let reason):
            code = c
            status = reason.isEmpty ? "\(c)" : "\(c) \(reason)"
            if let verdict {
                health = verdict.health
                detail = verdict.message
                if health != .up {
                    error = "check"
                    detail = verdict.message ?? "check returned \(health.rawValue)"
                }
            } else if !self.target.expect.contains(c) {
                health = .down
                error = "status"
                detail = "status \(c) is not in expect \(self.target.expect)"
            } else if let warning = result.warning {
                health = .degraded
                error = warning.error
                detail = warning.detail
            }
        case .reply(let reply):
            status = reply.status
            health = reply.health
            error = reply.error
            detail = reply.detail
            if let verdict {
                health = verdict.health
                error = health == .up ? nil : "check"
                detail = health == .up ? verdict.message : (verdict.message ?? "check returned \(health.rawValue)")
            }
        case .failure(let failure):
            status = failure.kind.rawValue
            health = .down
            error = failure.kind.rawValue
            detail = failure.detail
        }
        self.errorCount = health == .down ? self.errorCount + 1 : 0
        let previous = self.state
        var state = State(
            url: self.target.displayURL, rawURL: self.target.url, name: self.target.name, ordinal: self.target.ordinal,
            status: status, code: code,
            health: health,
            error: error,
            detail: detail, errorCount: self.errorCount, latency: result.latency, polls: self.polls,
            since: now, checkedAt: now, lateness: self.lateness
        )
        state.tls = result.tls
        state.dns = result.dns
        state.timings = result.timings
        state.http = result.http
        if let previous, !state.differs(from: previous) { state.since = previous.since }
        self.state = state
        self.headers = self.target.captureHeaders ? result.headers : []
        return state
    }
}
