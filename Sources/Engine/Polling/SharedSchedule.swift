import Crypto
import FoundationEssentials
import Synchronization

/// SharedSchedule is the Sleep of several urlpoll instances that run the same script against one
/// PostgreSQL database (`run --store`): instead of each Resource sleeping in its own process, every URL has
/// a row with its `due_at`, and each instance's pool claims the due rows (``PostgresStore/claim(limit:scriptHash:now:)``),
/// polls them, and writes the results and next due times back (``PostgresStore/complete(_:now:)``).
///
/// Wake-ups are a short poll of the earliest due time (``wakeInterval`` at most between looks), not
/// `LISTEN/NOTIFY`: nothing another instance does makes a row due sooner (a row falls due by time passing,
/// which no notification announces), a lease that expires because its instance died announces nothing
/// either, and one indexed `min(due_at)` a second per instance costs the server next to nothing.
public struct SharedSchedule: Sendable {
    /// The database.
    public let store: PostgresStore
    /// What identifies the script's URL list and hooks (``scriptHash(text:arguments:targets:settings:)``): the
    /// schedule follows the script most recently loaded by a live instance (``aliveLimit``, ``rule``), and
    /// instances whose hash differs claim nothing.
    public let scriptHash: String
    /// The time the schedule is read at (seconds since the epoch); nil, the database server's clock, so
    /// instances whose clocks differ still agree on what is due. Tests pass their manual clock's.
    public let databaseTime: (@Sendable () -> Double)?
    /// Whether the pool lists its URLs in the schedule when it starts (a reload's new pool does; at start
    /// the session has already, to stop with a clear error when it cannot).
    public let syncsOnStart: Bool
    /// Whether the pool replaces one that ran the schedule until now (a reload, SIGHUP): its start is then no
    /// gap in looking at the schedule, and a row overdue then counts as lateness, as it would have for the
    /// pool before it.
    public let replacesAPool: Bool
    /// Where the heartbeat's count and the leadership are shown (`/metrics`), if anywhere.
    public let metrics: ClusterMetrics?
    /// Whether the schedule follows this pool's script, as its claimer last saw (true until it looks): the
    /// leader loop takes the report lock only then.
    let current = Current()

    /// A flag the claimer sets and the leader loop reads.
    final class Current: Sendable {
        private let value = Atomic(true)
        var isSet: Bool { self.value.load(ordering: .relaxed) }
        func set(_ value: Bool) { self.value.store(value, ordering: .relaxed) }
    }

    /// Set when the pool is stopped for a reload (``PollerPool/replacing()``): its polls in flight then
    /// finish and are written back before it stops, so the new pool neither polls them again nor waits
    /// for their leases; on any other stop they are dropped, their leases left to end.
    let replacing = Flag()

    /// A flag set once, shared by the copies of a schedule.
    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)

        func set() { self.value.store(true, ordering: .sequentiallyConsistent) }
        var isSet: Bool { self.value.load(ordering: .sequentiallyConsistent) }
    }

    public init(
        store: PostgresStore, scriptHash: String, databaseTime: (@Sendable () -> Double)? = nil,
        syncsOnStart: Bool = true, replacesAPool: Bool = false, metrics: ClusterMetrics? = nil
    ) {
        self.replacesAPool = replacesAPool
        self.metrics = metrics
        self.store = store
        self.scriptHash = scriptHash
        self.databaseTime = databaseTime
        self.syncsOnStart = syncsOnStart
    }

    /// The most time between two looks at the schedule: a row that falls due, or whose lease expires, is
    /// claimed at most this late (and ``TimerQueue/resolution`` earlier wake-ups are not worth a query).
    public static var wakeInterval: Duration { .seconds(1) }

    /// The longest time between two of an instance's looks at the schedule that is not a gap. After a gap (the
    /// instance's start, PostgreSQL not answering), the rows that fell due during it are polled as claimed
    /// and their wait is not counted as lateness: it is not the engine falling behind (``PollerPool``).
    public static var gapLimit: Duration { .seconds(5) }

    /// How often an instance's claimer beats its heartbeat and looks at which script the fleet follows (and
    /// at once when that script changes).
    public static var beatInterval: Duration { .seconds(2) }

    /// An instance whose heartbeat is older than this is not live: the fleet no longer follows its script
    /// (``PostgresStore/adopt(_:scriptHash:alive:now:)``). Four beats; with a beat and a look at most
    /// ``beatInterval`` and ``wakeInterval`` later, a fleet left on the script of an instance that died
    /// polls again within 11 s, less than any lease (``leaseMargin`` and a timeout).
    public static var aliveLimit: Duration { .seconds(8) }

    /// The rule of which script the fleet follows, in words (logs and `/healthz`).
    static let rule =
        "the fleet follows the script most recently loaded by a live instance (heartbeat within \(formatSeconds(aliveLimit.seconds)) s)"

    /// What to say when this instance's sync replaced another script's URL list (its start, a reload), or
    /// nil when the schedule followed this script already or none.
    public static func takeover(
        from previous: PostgresStore.Previous?, scriptHash: String, store: PostgresStore
    ) -> String? {
        guard let previous, previous.scriptHash != scriptHash else { return nil }
        return
            "\(store.location) followed another script, loaded by \(previous.loader); it follows this instance's (\(store.instance)) from now on: URLs it does not list are retired, and instances still running the other script poll nothing until this one stops or is silent for \(formatSeconds(aliveLimit.seconds)) s, or they load this script (\(rule))"
    }

    /// What a lease adds to a URL's timeout: the time a `check` hook, the backoff and the write-back may
    /// take. A URL whose instance dies is claimed again at most `timeout + leaseMargin` after its claim.
    public static var leaseMargin: Duration { .seconds(10) }

    /// The schedule's rows for `targets`: each URL's key, definition hash and lease, and, for a URL new to
    /// the schedule, when it first falls due: up to ``PollerPool/startRate`` a second from the sync on, as
    /// a single instance spreads its first polls, squeezed to fit in one `poll_interval`.
    public static func listings(for targets: [Target], settings: Settings) -> [PostgresStore.Listing] {
        let rate = PollerPool<ContinuousClock>.startRate
        let batches = (targets.count + rate - 1) / rate
        let step = batches > 1 ? min(1.0, settings.pollInterval.seconds / Double(batches - 1)) : 0
        return targets.enumerated().map { i, target in
            PostgresStore.Listing(
                url: target.displayURL, ordinal: target.ordinal, name: target.name,
                definitionHash: target.definitionHash,
                leaseSeconds: (settings.timeout(for: target) + Self.leaseMargin).seconds,
                offset: step * Double(i / rate))
        }
    }

    /// SHA-256 (hex) of the script's text, its arguments, its URLs' definitions and the settings that say
    /// how they are polled and reported as the command line leaves them (`poll_interval`, `timeout`,
    /// `error_backoff`, `status_interval`, after `--poll-interval`, `--timeout`, `--error-backoff`,
    /// `--status-interval`): two instances agree on it exactly when they run the same script on the same
    /// arguments and poll its URLs alike. `pollers` is each machine's own and is left out.
    public static func scriptHash(text: String, arguments: [String], targets: [Target], settings: Settings)
        -> String
    {
        var hash = SHA256()
        hash.update(data: Array(text.utf8))
        for argument in arguments { hash.update(data: [0] + Array(argument.utf8)) }
        for target in targets { hash.update(data: [1] + Array(target.definitionHash.utf8)) }
        for setting in [settings.pollInterval, settings.timeout, settings.errorBackoff, settings.statusInterval] {
            hash.update(data: [2] + Array("\(setting.seconds)".utf8))
        }
        return hash.finalize().hexadecimal
    }
}
