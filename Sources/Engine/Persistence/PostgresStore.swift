import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// PostgresStore is the schedule several urlpoll instances share (`run --store postgresql://…`): one row
/// per URL with its state, when it is next due and who holds its lease, the change log, per-minute rollups,
/// and a row per instance with its heartbeat (tables: ``migrations``). It speaks PostgreSQL 12 or later through
/// postgres-nio's `PostgresClient`, a pool of connections sized by the caller.
///
/// Instances never talk to each other: each claims due rows with `UPDATE … WHERE id IN (SELECT … FOR UPDATE
/// SKIP LOCKED) RETURNING …` (``claim(limit:now:)``), polls them, and writes results, next due times and the
/// lease's release back in one statement per batch (``complete(_:now:)``), conditioned on the row version and
/// the claim it holds, so only one instance's result for a poll counts: the pattern of the job queues River,
/// Oban, graphile-worker and Que (<https://www.postgresql.org/docs/15/sql-select.html#SQL-FOR-UPDATE-SHARE>).
///
/// Every error is a ``HistoryError`` in words, naming the database without any password.
public final class PostgresStore: Sendable {
    /// Where the database is (printed without a password).
    public let location: PostgresLocation
    /// This instance's name in the leases and the instances table: `host:pid:random`.
    public let instance: String
    /// How long one statement may wait for a connection and its answer before it is given up as failed
    /// (``defaultStatementTimeout`` unless the caller says otherwise): the pool itself waits for as long as
    /// the server stays away, reconnecting in the background.
    public let statementTimeout: Duration
    let client: PostgresClient
    let logger: Logger
    let configuration: PostgresConnection.Configuration
    /// The report lock's session a pool left for the pool that replaces it (a reload), and whether it held
    /// the lock; `stopped` once ``run()`` ends, when a session left is closed at once.
    private let leftSession = Mutex<(session: PostgresConnection?, leading: Bool, stopped: Bool)>((nil, false, false))
    /// When the report tick of the pool before fell due last (its clock's instant), for the pool that
    /// replaces it: the ticks that fall due between the two are counted as missed, not lost.
    private let leftTick = Mutex<(any Sendable)?>(nil)
    /// The store's one outage record: every pool of this instance (a reload's too) tells it what its
    /// statements met, so an outage a reload falls into is said once and its length counts from the last
    /// statement any of them had answered.
    let outage: StoreOutage
    /// The statements (``attempt(_:within:_:)``'s work) still running, also those given up (cancelled, not
    /// awaited): a clean stop waits for them before it releases the leases (``leave(within:releasing:)``), so
    /// a claim that answers after the stop began has its rows released too.
    let running = Mutex<(next: Int, tasks: [Int: Task<Void, Never>])>((0, [:]))

    /// - Parameters:
    ///   - connections: The most connections the pool opens (the pollers' claims and writes, the leader's
    ///     report, the heartbeat).
    ///   - instance: This instance's name; by default `host:pid:` and 6 random hex digits. Its connections
    ///     carry it as their `application_name` (what `pg_stat_activity` shows), which is how another
    ///     instance finds the backend of a leader whose heartbeat stopped (``leaderToReplace(stale:)``).
    ///   - statementTimeout: How long a statement may take before it is given up (tests shorten it).
    public init(
        location: PostgresLocation, connections: Int, instance: String? = nil,
        statementTimeout: Duration = PostgresStore.defaultStatementTimeout, logger: Logger
    ) {
        self.location = location
        self.instance = instance ?? Self.defaultInstanceName()
        self.statementTimeout = statementTimeout
        self.logger = logger
        let tls: PostgresClient.Configuration.TLS
        let connectionTLS: PostgresConnection.Configuration.TLS
        switch location.tls {
        case .disable:
            tls = .disable
            connectionTLS = .disable
        case .prefer:
            tls = .prefer(.makeClientConfiguration())
            connectionTLS = (try? .prefer(.init(configuration: .makeClientConfiguration()))) ?? .disable
        case .require:
            tls = .require(.makeClientConfiguration())
            connectionTLS = (try? .require(.init(configuration: .makeClientConfiguration()))) ?? .disable
        }
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: tls)
        configuration.options.maximumConnections = max(2, connections)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [("application_name", self.instance)]
        // The pool's own log lines are postgres-nio's error dumps; urlpoll says what failed itself, in words.
        self.client = PostgresClient(configuration: configuration, backgroundLogger: Self.quiet)
        var single = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: connectionTLS)
        single.options.connectTimeout = .seconds(5)
        single.options.additionalStartupParameters = [("application_name", self.instance)]
        self.configuration = single
        self.outage = StoreOutage(location: location, logger: logger)
    }

    /// Runs the connection pool until the task is cancelled; every other method waits for a connection from
    /// it, so call them while this runs.
    ///
    /// It returns as soon as the task is cancelled: the pool's own shutdown waits for every connection it
    /// leased to come back, which one stuck on a server that went away without a word never does; that wait
    /// goes on on a task of its own, and urlpoll is not held by it.
    public func run() async {
        let client = self.client
        let pool = Task { await client.run() }
        let race = Race<Void>()
        _ = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                race.begin(continuation)
                race.hold(
                    Task {
                        await pool.value
                        race.finish(.success(()))
                    })
            }
        } onCancel: {
            pool.cancel()
            race.finish(.failure(CancellationError()))
            let left = self.leftSession.withLock { left in
                defer { left = (nil, false, true) }
                return left.session
            }
            if let left { Task { await self.close(left) } }
        }
    }

    /// Leaves the report lock's session (``connectAlone()``) of a pool that stops for the next pool of this
    /// instance to take (``takeLeftSession()``), so that a reload keeps the lock; closed at once when the
    /// store is stopping (its ``run()`` ended), or when an earlier one is still there.
    public func leave(_ session: PostgresConnection, leading: Bool) async {
        let closing = self.leftSession.withLock { left -> [PostgresConnection] in
            if left.stopped { return [session] }
            defer { left = (session, leading, false) }
            return left.session.map { [$0] } ?? []
        }
        for connection in closing { await self.close(connection) }
    }

    /// The report lock's session the pool before left (``leave(_:leading:)``), if any, and whether it held
    /// the lock.
    public func takeLeftSession() -> (session: PostgresConnection, leading: Bool)? {
        self.leftSession.withLock { left in
            defer { left = (nil, false, left.stopped) }
            return left.session.map { ($0, left.leading) }
        }
    }

    /// Keeps `tick`, when the report tick of a pool that stops fell due last, for the pool that replaces it
    /// (``takeLeftTick()``).
    func leaveTick(_ tick: (any Sendable)?) {
        self.leftTick.withLock { $0 = tick }
    }

    /// The last report tick the pool before left (``leaveTick(_:)``), if any.
    func takeLeftTick() -> (any Sendable)? {
        self.leftTick.withLock { tick in
            defer { tick = nil }
            return tick
        }
    }

    static func defaultInstanceName() -> String {
        let host = ProcessInfo.processInfo.hostName
        let random = String(UInt32.random(in: 0...0xFF_FFFF), radix: 16)
        return "\(host):\(ProcessInfo.processInfo.processIdentifier):\(random)"
    }

    /// How long one statement may wait for a connection and its answer before it is given up as failed,
    /// unless a store is made with another limit.
    public static var defaultStatementTimeout: Duration { .seconds(10) }

    /// Runs `body`, given up after ``statementTimeout`` or as soon as the calling task is cancelled, turning
    /// whatever it throws into a ``HistoryError`` that says, in words, what could not be done (`what`) and
    /// why.
    ///
    /// A deadlock or serialization failure is tried again a few times within the limit
    /// (``retryingConflicts(_:_:)``), at start as at a reload.
    ///
    /// `body` runs on a task of its own that is cancelled, not awaited, when it is given up: a statement on a
    /// connection the server dropped without a word may never answer nor heed cancellation, and nothing that
    /// waits on PostgreSQL may keep urlpoll from stopping.
    ///
    /// - Parameters:
    ///   - limit: The time limit, when not ``statementTimeout``.
    func attempt<T: Sendable>(
        _ what: String, within limit: Duration? = nil,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws(HistoryError) -> T {
        let limit = limit ?? self.statementTimeout
        let race = Race<T>()
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                race.begin(continuation)
                let work = self.running.withLock { running in
                    let id = running.next
                    running.next += 1
                    let task = Task {
                        do {
                            race.finish(.success(try await self.retryingConflicts(what, body)))
                        } catch {
                            race.finish(.failure(error))
                        }
                        _ = self.running.withLock { $0.tasks.removeValue(forKey: id) }
                    }
                    running.tasks[id] = task
                    return task
                }
                let timer = Task {
                    try? await Task.sleep(for: limit)
                    race.finish(.failure(Race<T>.TimedOut()))
                }
                race.hold(work, timer)
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
        switch outcome.mapError({ Self.unwrapped($0) }) {
        case .success(let value):
            return value
        case .failure(let error as HistoryError):
            throw error
        case .failure(is Race<T>.TimedOut):
            throw HistoryError(
                "\(self.location): cannot \(what): no answer within \(formatSeconds(limit.seconds)) s (is the server up and reachable, or is the statement waiting for a lock another session holds?)"
            )
        case .failure(is CancellationError):
            throw HistoryError("\(self.location): cannot \(what): urlpoll is stopping")
        case .failure(let error):
            throw HistoryError("\(self.location): cannot \(what): \(Self.words(error))")
        }
    }

    /// How many times a statement or transaction that PostgreSQL ended in a conflict with another
    /// instance's is tried in all (``retryingConflicts(_:_:)``).
    static var conflictTries: Int { 4 }

    /// Runs `body`, trying it again, up to ``conflictTries`` times in all, when PostgreSQL ended it in a
    /// conflict with another session's transaction: a deadlock (SQLSTATE 40P01) or a serialization failure
    /// (40001). Both are rolled back whole and are normal outcomes of instances locking the same rows at
    /// once; PostgreSQL's documentation asks the client to retry them
    /// (<https://www.postgresql.org/docs/15/mvcc-serialization-failure-handling.html>). Each try waits first
    /// for a jittered backoff (``conflictDelay(after:)``), so the two sides do not meet again in step, and
    /// says so in a line in words. Any other error, or the last try's conflict, is thrown as it is.
    private func retryingConflicts<T: Sendable>(_ what: String, _ body: @Sendable () async throws -> T)
        async throws -> T
    {
        var tries = 1
        while true {
            do {
                return try await body()
            } catch {
                guard tries < Self.conflictTries, let conflict = Self.conflict(error) else { throw error }
                let delay = Self.conflictDelay(after: tries)
                tries += 1
                self.logger.notice(
                    "\(self.location): could not \(what) at once: PostgreSQL ended the transaction in \(conflict) with another session's; trying again in \(formatSeconds((delay.seconds * 1000).rounded() / 1000)) s (try \(tries) of \(Self.conflictTries))"
                )
                try await Task.sleep(for: delay)
            }
        }
    }

    /// What a conflict that PostgreSQL asks to retry is, in words (`a deadlock (SQLSTATE 40P01)`); nil for
    /// any other error.
    static func conflict(_ error: any Error) -> String? {
        guard let error = Self.unwrapped(error) as? PSQLError else { return nil }
        switch error.serverInfo?[.sqlState] {
        case "40P01": return "a deadlock (SQLSTATE 40P01)"
        case "40001": return "a serialization failure (SQLSTATE 40001)"
        default: return nil
        }
    }

    /// How long to wait before try `tries + 1` after a conflict: 50 ms doubling with each try, times a
    /// random factor from 0.5 to 1.5.
    static func conflictDelay(after tries: Int) -> Duration {
        .milliseconds(Int(Double(50 << min(tries - 1, 4)) * Double.random(in: 0.5...1.5)))
    }

    /// The first of a statement's answer, its time limit and the caller's cancellation: whichever comes
    /// first resumes the caller and cancels the others.
    final class Race<T: Sendable>: Sendable {
        struct TimedOut: Error {}
        private struct Inside {
            var continuation: CheckedContinuation<Result<T, any Error>, Never>?
            var outcome: Result<T, any Error>?
            var tasks: [Task<Void, Never>] = []
        }
        private let inside = Mutex(Inside())

        func begin(_ continuation: CheckedContinuation<Result<T, any Error>, Never>) {
            let early = self.inside.withLock { inside -> Result<T, any Error>? in
                if let outcome = inside.outcome { return outcome }
                inside.continuation = continuation
                return nil
            }
            if let early { continuation.resume(returning: early) }
        }

        func hold(_ tasks: Task<Void, Never>...) {
            let finished = self.inside.withLock { inside -> Bool in
                inside.tasks = tasks
                return inside.outcome != nil
            }
            if finished { tasks.forEach { $0.cancel() } }
        }

        func finish(_ outcome: Result<T, any Error>) {
            let (continuation, tasks) = self.inside.withLock { inside in
                guard inside.outcome == nil else {
                    return (CheckedContinuation<Result<T, any Error>, Never>?.none, [Task<Void, Never>]())
                }
                inside.outcome = outcome
                defer { inside.continuation = nil }
                return (inside.continuation, inside.tasks)
            }
            tasks.forEach { $0.cancel() }
            continuation?.resume(returning: outcome)
        }
    }

    /// The error inside postgres-nio's wrappers: a transaction's `PostgresTransactionError` (postgres-nio's
    /// `withTransaction`) stands for the first of what its `BEGIN`, its body, its `COMMIT` and its
    /// `ROLLBACK` met, so a ``HistoryError`` thrown in the body comes out as it was thrown.
    static func unwrapped(_ error: any Error) -> any Error {
        if let error = error as? PostgresTransactionError,
            let inner = error.beginError ?? error.closureError ?? error.commitError ?? error.rollbackError
        {
            return Self.unwrapped(inner)
        }
        return error
    }

    /// An error from postgres-nio in words: the server's message and SQLSTATE, or what happened to the
    /// connection. Never the query's text or bindings, nor the password.
    static func words(_ error: any Error) -> String {
        let error = Self.unwrapped(error)
        if let error = error as? HistoryError { return error.description }
        if let error = error as? ChannelError, case .connectTimeout(let limit) = error {
            // The connection and PostgreSQL's start-up share the limit: a stopped, frozen or overloaded
            // PostgreSQL (whose kernel still accepts the connection), a server of another kind on the port (which
            // waits for a request of its own) and a host that never answers all end here; ``connectAlone()``
            // tells the first apart at start.
            return
                "no answer to PostgreSQL's start-up within \(limit.nanoseconds / 1_000_000_000) s (is the server stopped, frozen or overloaded, the host unreachable, or a server of another kind listening on that port?)"
        }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return "PostgreSQL says: \(message)\(state)"
            }
            let cause = error.underlying.map { ": \(Self.words($0))" } ?? ""
            switch error.code {
            case .connectionError: return error.underlying.map(Self.words) ?? "the connection failed"
            case .serverClosedConnection: return "the server closed the connection\(cause)"
            // Also what a statement on a connection the server already closed meets: not urlpoll's doing.
            case .clientClosedConnection: return "the connection is closed (the server closed it, or it was lost)"
            case .unexpectedBackendMessage, .messageDecodingFailure:
                return
                    "the server answered something that is not PostgreSQL (is a server of another kind listening on that port?)"
            case .sslUnsupported: return "the server does not offer TLS, which sslmode=require demands"
            case .authMechanismRequiresPassword:
                return
                    "the server asks for a password and none was given: set PGPASSWORD or a ~/.pgpass entry (or PGPASSFILE)"
            default: return "\(error.code)\(cause)"
            }
        }
        // NIO's happy-eyeballs connect: the name's look-up failed, or every address it gave refused.
        if let error = error as? NIOConnectionError {
            if let lookup = error.dnsAError ?? error.dnsAAAAError {
                let reason = (lookup as? SocketAddressError.UnknownHost)?.errorDescription ?? Self.words(lookup)
                return "cannot resolve host \(error.host) (\(reason))"
            }
            var seen: [String] = []
            for failure in error.connectionErrors where !seen.contains(Self.words(failure.error)) {
                seen.append(Self.words(failure.error))
            }
            return seen.isEmpty ? "the connection failed" : seen.joined(separator: "; ")
        }
        if let error = error as? SocketAddressError.UnknownHost {
            return "cannot resolve host \(error.host) (\(error.errorDescription))"
        }
        // NIO's connection errors carry the system's errno; its words are strerror's.
        let text = String(describing: error)
        if let range = text.range(of: "errno: "),
            let number = Int32(text[range.upperBound...].prefix { $0.isNumber }), let words = strerror(number)
        {
            return String(cString: words)
        }
        return text
    }

    /// A connection of its own, outside the pool: for a session-level advisory lock, held as long as the
    /// connection lives.
    ///
    /// A connection that PostgreSQL's start-up did not finish within its limit is told apart in words: a
    /// server that accepted the connection and said nothing (stopped, frozen or overloaded), from a host
    /// where nothing accepted it; a server that closes the connection before the start-up is done (a server of
    /// another kind, which hangs up on a message it does not know) is named by its host and port with the
    /// question whether it is PostgreSQL.
    public func connectAlone() async throws(HistoryError) -> PostgresConnection {
        try await self.attempt("connect") {
            do {
                return try await PostgresConnection.connect(
                    configuration: self.configuration, id: 0, logger: Self.quiet)
            } catch let error as PSQLError {
                // Closed before the start-up was done: with a FIN, or with a RST when the server closed with
                // the start-up message unread (which of the two is a race on the server's side).
                let reset = [ECONNRESET, EPIPE].contains((error.underlying as? IOError)?.errnoCode ?? 0)
                if error.code == .serverClosedConnection || reset, error.serverInfo == nil {
                    throw HistoryError(
                        "\(self.location): cannot connect: the server at \(self.location.host):\(self.location.port) closed the connection before PostgreSQL's start-up was done (is it PostgreSQL? a server of another kind listening on that port hangs up so)"
                    )
                }
                guard case .connectTimeout(let limit) = error.underlying as? ChannelError else { throw error }
                guard await self.accepts() else { throw error }
                throw HistoryError(
                    "\(self.location): cannot connect: the server accepted the connection but did not answer within \(limit.nanoseconds / 1_000_000_000) s (is the server overloaded or stopped?)"
                )
            }
        }
    }

    /// Whether the server's host and port accept a TCP connection within a second (closed at once).
    private func accepts() async -> Bool {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(.seconds(1))
        guard let channel = try? await bootstrap.connect(host: self.location.host, port: self.location.port).get()
        else { return false }
        try? await channel.close()
        return true
    }

    /// Closes a connection of its own (``connectAlone()``), giving up after ``statementTimeout`` or when the
    /// task is cancelled: a connection whose server went away may never answer the goodbye.
    public func close(_ connection: PostgresConnection) async {
        _ = try? await self.attempt("close a connection") { try await connection.close() }
    }

    /// A logger for postgres-nio's own lines, which urlpoll replaces with its own in words.
    static let quiet = Logger(label: "urlpoll.postgres") { _ in SwiftLogNoOpLogHandler() }
}
