import FoundationEssentials
import Logging
import PostgresNIO

extension PostgresStore {
    /// One URL of the loaded script, as the schedule lists it.
    public struct Listing: Sendable, Hashable, Codable {
        public var url: String
        public var ordinal: Int
        public var name: String
        /// What the URL's definition hashes to (``Target/definitionHash``): a new one replaces the row's
        /// target, and it falls due at once.
        public var definition_hash: String
        /// The lease a claim takes (seconds): the URL's timeout and a margin.
        public var lease_seconds: Double
        /// When a new row first falls due, in seconds after the sync starts (a row that falls due before the
        /// sync ends is spread again from its end: ``PostgresStore/sync(_:scriptHash:now:)``).
        public var offset: Double

        public init(
            url: String, ordinal: Int, name: String, definitionHash: String, leaseSeconds: Double, offset: Double
        ) {
            self.url = url
            self.ordinal = ordinal
            self.name = name
            self.definition_hash = definitionHash
            self.lease_seconds = leaseSeconds
            self.offset = offset
        }
    }

    /// The script a schedule follows and the instance that loaded it: what a sync found before it wrote
    /// (``sync(_:scriptHash:now:)``), or what a beat found (``beat(scriptHash:alive:now:)``).
    public struct Previous: Sendable, Hashable {
        public var scriptHash: String
        /// The instance that listed the script's URLs last (`host:pid:random` unless named otherwise).
        public var loadedBy: String
        /// When it did, in seconds since the epoch (the database's clock); nil when unknown.
        public var loadedAt: Double?
        /// Its host and process id, from its row in `urlpoll_instances`; nil once that row is gone.
        public var host: String?
        public var pid: Int?

        public init(
            scriptHash: String, loadedBy: String, loadedAt: Double? = nil, host: String? = nil, pid: Int? = nil
        ) {
            self.scriptHash = scriptHash
            self.loadedBy = loadedBy
            self.loadedAt = loadedAt
            self.host = host
            self.pid = pid
        }

        /// The loader in words: `instance ID (host H, process P), which loaded it at 2026-11-30T04:21:13Z`.
        public var loader: String {
            var words = "instance \(self.loadedBy)"
            if let host = self.host, let pid = self.pid { words += " (host \(host), process \(pid))" }
            if let at = self.loadedAt {
                // The time it listed the URLs (a load, a reload or an adoption), never rounded into the future.
                words += ", followed since \(Date(timeIntervalSince1970: at.rounded(.down)).formatted(.iso8601))"
            }
            return words
        }
    }

    /// A row this instance claimed: the URL, the claim, and the state the row held.
    public struct Claim: Sendable {
        public var id: Int64
        public var key: HistoryKey
        public var version: Int64
        /// The claim's number (`claims` after it): a write must name it to count.
        public var claims: Int64
        /// When the row was due, and when it was claimed (the database's time, or the `now` given).
        public var due: Double
        public var claimedAt: Double
        /// When the row could first be claimed: its due time, or, when another claim's lease held it past
        /// that (an instance that died or stopped with the poll in flight), when that lease expired.
        public var claimable: Double
        /// The state the row held, nil if the URL was never polled.
        public var state: State?
    }

    /// What a poll of a claimed row left: the new state (or the held one, when no poll was made), when it is
    /// due next, and whether it is a change to run `on_change` for.
    public struct Completion: Sendable {
        public var claim: Claim
        public var state: State?
        /// Whether a poll was made (false: urlpoll could not make it; only the due time moves).
        public var polled: Bool
        /// Seconds from the write to the next due time.
        public var delay: Double

        public init(claim: Claim, state: State?, polled: Bool, delay: Double) {
            self.claim = claim
            self.state = state
            self.polled = polled
            self.delay = delay
        }

        /// Whether the state differs from the one the row held (``State/differs(from:)``).
        public var changed: Bool { self.polled && (self.state?.differs(from: self.claim.state) ?? false) }
    }

    /// The database's time, or `now` when one is given (tests pass their manual clock's).
    private static func time(_ now: Double?) -> String {
        now == nil ? "extract(epoch from statement_timestamp())::float8" : "$1::float8"
    }

    /// Registers this instance (or refreshes its heartbeat) and says how many instances beat within
    /// `alive` seconds.
    ///
    /// On `connection` (a connection of its own, ``connectAlone()``) when one is given, else on the pool's.
    public func heartbeat(
        scriptHash: String, alive: Double, now: Double? = nil, on connection: PostgresConnection? = nil
    ) async throws(HistoryError) -> Int {
        try await self.attempt("record this instance's heartbeat") {
            let pid = Int32(ProcessInfo.processInfo.processIdentifier)
            let host = ProcessInfo.processInfo.hostName
            let rows = try await self.query(
                on: connection,
                """
                WITH t AS (SELECT coalesce(\(now)::float8, extract(epoch from statement_timestamp())::float8) AS now),
                beat AS (
                    INSERT INTO urlpoll_instances (id, host, pid, script_hash, started_at, heartbeat_at)
                    SELECT \(self.instance), \(host), \(pid), \(scriptHash), t.now, t.now FROM t
                    ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at,
                        script_hash = EXCLUDED.script_hash)
                SELECT 1 + count(*) FROM urlpoll_instances, t
                WHERE id <> \(self.instance) AND heartbeat_at > t.now - \(alive)::float8
                """)
            var count = 1
            for try await n in rows.decode(Int64.self) { count = Int(n) }
            return count
        }
    }

    /// Makes the schedule list exactly `listings`: new URLs are added (due `offset` seconds from now), a
    /// changed definition replaces the row's (due at once, its state kept), a retired row listed again is
    /// due at once from now (the time it was retired is no lateness: nobody was meant to poll it), URLs not
    /// listed are retired, rows already listed as they are are neither written nor locked (an instance
    /// joining a fleet of 100,000 URLs would otherwise hold every row for the seconds its sync takes, and the
    /// others' claims, which skip locked rows, and write-backs, which wait for them, would stall meanwhile), and
    /// the schedule records `scriptHash` as the script it now follows, loaded by this instance now (its row
    /// in `urlpoll_instances` says so: `loaded_at`). Instances running another script claim nothing from then
    /// on (``claim(limit:scriptHash:now:)``) until they load this one, or until no live instance runs it
    /// (``adopt(_:scriptHash:alive:now:)``). The rows it changes or retires are locked in `id` order first, as
    /// write-backs lock theirs; a deadlock (SQLSTATE 40P01) is tried again, up to 4 times in all (``retryingConflicts(_:_:)``).
    /// When the schedule follows `scriptHash` already, the rows are not compared at all: the hash covers every
    /// listing (``SharedSchedule/scriptHash(text:arguments:targets:settings:)``), so equal hashes mean equal
    /// lists; only this instance's row and the schedule's loader are written.
    ///
    /// A listing of many URLs takes seconds (100,000 URLs: 1 to 3 s on a 2-core machine), and the rows it
    /// makes due meanwhile could not be claimed before it commits: left as they are, they would all be overdue
    /// at once then, a burst the fleet's first claims take whole while the rows due after it wait (bench/cluster.py,
    /// a fleet's first 10 s). So the rows this listing made due before its end are spread again, in their
    /// order and evenly, from its end to the last first due time it lists (`offset`), or all due at its end
    /// when that has passed too.
    /// - Parameter now: The time (seconds since the epoch), read when the listing starts and again when it
    ///   ends; nil, the database server's clock. Tests pass their manual clock's.
    /// - Returns: The script the schedule followed before, and who loaded it, if any.
    public func sync(
        _ listings: [Listing], scriptHash: String, now: @autoclosure @escaping @Sendable () -> Double? = nil
    ) async throws(HistoryError) -> Previous? {
        try await self.list(listings, scriptHash: scriptHash, now: now, unlessFollowedWithin: nil).previous
    }

    /// Lists `listings` as ``sync(_:scriptHash:now:)`` does, but only when the schedule is orphaned: no
    /// instance whose heartbeat is younger than `alive` seconds runs the script it follows, and of the
    /// instances that are, the one that loaded its script last runs `scriptHash` (ties: the lowest id). The
    /// fleet then follows the newest script still running, and the rows retired by the orphaned one are
    /// listed (and polled) again, with no SIGHUP. Checked and done in one transaction under the lock syncs
    /// take, so of several instances running that script one lists it and the others find it done.
    /// - Returns: The script the schedule followed, when this call listed `listings`; nil when it did not
    ///   (the schedule is followed, by now perhaps thanks to another instance, or another script is newer).
    public func adopt(
        _ listings: [Listing], scriptHash: String, alive: Double,
        now: @autoclosure @escaping @Sendable () -> Double? = nil
    ) async throws(HistoryError) -> Previous? {
        let listed = try await self.list(listings, scriptHash: scriptHash, now: now, unlessFollowedWithin: alive)
        return listed.done ? listed.previous : nil
    }

    /// `now` when it is given (tests' manual clock), else the database server's clock now (`clock_timestamp()`,
    /// which moves during a transaction), in seconds since the epoch.
    static func clock(_ now: Double?, on connection: PostgresConnection) async throws -> Double {
        if let now { return now }
        let rows = try await connection.query(
            "SELECT extract(epoch from clock_timestamp())::float8", logger: Self.quiet)
        for try await seconds in rows.decode(Double.self) { return seconds }
        throw HistoryError("the server did not say its time (SELECT clock_timestamp() returned no row)")
    }

    /// How long a listing of `count` URLs may take: ``statementTimeout`` and 1 ms per URL (10 s and 100 s
    /// for 100,000 URLs), for listings wait for one another (instances started together list one after
    /// the other, under one lock), and on a loaded machine one of 100,000 URLs took more than 10 s
    /// (bench/cluster.py: two of three instances started at once gave up at start).
    func listingLimit(_ count: Int) -> Duration {
        self.statementTimeout + .milliseconds(count)
    }

    /// ``sync(_:scriptHash:now:)`` and ``adopt(_:scriptHash:alive:now:)``: with `unlessFollowedWithin`, lists
    /// only when the schedule is orphaned and `scriptHash` is the newest live script.
    private func list(
        _ listings: [Listing], scriptHash: String, now clock: @escaping @Sendable () -> Double?,
        unlessFollowedWithin alive: Double?
    ) async throws(HistoryError) -> (previous: Previous?, done: Bool) {
        let json = String(decoding: try Self.encode(listings), as: UTF8.self)
        let lastOffset = listings.map(\.offset).max() ?? 0
        let pid = Int32(ProcessInfo.processInfo.processIdentifier)
        let host = ProcessInfo.processInfo.hostName
        return try await self.attempt(
            "list the script's URLs", within: self.listingLimit(listings.count)
        ) {
            try await self.client.withTransaction(logger: Self.quiet) { connection in
                try await connection.run("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: Self.quiet)
                // The listing's start, read once the lock is taken: the first due times count from it.
                let now = try await Self.clock(clock(), on: connection)
                let found = try await Self.following(on: connection, alive: alive ?? 0, now: now)
                if alive != nil,
                    found.followed || found.newest != scriptHash || found.schedule?.scriptHash == scriptHash
                {
                    return (found.schedule, false)
                }
                // The schedule lists this very script already (its hash covers the text, the arguments, the
                // settings and every URL's definition: URL, name, ordinal, timeout, interval…), so its rows are
                // as this listing would leave them: an instance joining a running fleet skips the statement
                // that compares every row with the list (at 100,000 URLs about a second of PostgreSQL's CPU
                // per instance at a fleet's start, which held the others' first claims back).
                let listedAlready = alive == nil && found.schedule?.scriptHash == scriptHash
                if !listedAlready {
                    try await connection.run(
                        """
                        WITH t AS (SELECT coalesce(\(now)::float8, extract(epoch from statement_timestamp())::float8) AS now),
                        l AS (SELECT * FROM jsonb_to_recordset(\(json)::jsonb) AS l(url text, ordinal integer,
                            name text, definition_hash text, lease_seconds float8, "offset" float8)),
                        new AS (
                            INSERT INTO urlpoll_targets (url, ordinal, name, definition_hash, due_at, lease_seconds)
                            SELECT l.url, l.ordinal, l.name, l.definition_hash, t.now + l."offset", l.lease_seconds
                            FROM l, t
                            ON CONFLICT (url, ordinal) DO NOTHING),
                        lk AS MATERIALIZED (
                            SELECT p.id FROM urlpoll_targets p LEFT JOIN l ON l.url = p.url AND l.ordinal = p.ordinal
                            WHERE (l.url IS NULL AND NOT p.retired)
                                OR (l.url IS NOT NULL AND (p.definition_hash <> l.definition_hash OR p.retired
                                    OR p.name <> l.name OR p.lease_seconds <> l.lease_seconds))
                            ORDER BY p.id FOR UPDATE OF p),
                        changed AS (
                            UPDATE urlpoll_targets SET name = l.name, retired = false, lease_seconds = l.lease_seconds,
                                definition_hash = l.definition_hash,
                                due_at = CASE WHEN urlpoll_targets.retired
                                    THEN least(greatest(urlpoll_targets.due_at, t.now), t.now + l."offset")
                                    WHEN urlpoll_targets.definition_hash <> l.definition_hash
                                    THEN least(urlpoll_targets.due_at, t.now + l."offset") ELSE urlpoll_targets.due_at END
                            FROM l, t, lk
                            WHERE urlpoll_targets.id = lk.id
                                AND urlpoll_targets.url = l.url AND urlpoll_targets.ordinal = l.ordinal
                                AND (urlpoll_targets.definition_hash <> l.definition_hash OR urlpoll_targets.retired
                                    OR urlpoll_targets.name <> l.name
                                    OR urlpoll_targets.lease_seconds <> l.lease_seconds))
                        UPDATE urlpoll_targets SET retired = true
                        WHERE id IN (SELECT id FROM lk) AND NOT retired AND NOT EXISTS (
                            SELECT 1 FROM l WHERE l.url = urlpoll_targets.url AND l.ordinal = urlpoll_targets.ordinal)
                        """, logger: Self.quiet)
                    // The rows this listing made due before its end (this transaction wrote them: their `xmin`
                    // is its id, `txid_current()` without the epoch, as PostgreSQL 12 has it; no other row is
                    // touched), spread again from its end to its last first due time. Rows due before its
                    // start were overdue already, and are left as they are.
                    let end = try await Self.clock(clock(), on: connection)
                    try await connection.run(
                        """
                        WITH o AS (
                            SELECT id, row_number() OVER (ORDER BY due_at, id) - 1 AS n, count(*) OVER () AS k
                            FROM urlpoll_targets
                            WHERE NOT retired AND due_at >= \(now)::float8 AND due_at < \(end)::float8
                                AND xmin::text::bigint = txid_current() % 4294967296)
                        UPDATE urlpoll_targets
                        SET due_at = \(end)::float8 + o.n * greatest(0, \(now + lastOffset - end)::float8) / o.k
                        FROM o WHERE urlpoll_targets.id = o.id
                        """, logger: Self.quiet)
                }
                try await connection.run(
                    """
                    WITH t AS (SELECT coalesce(\(now)::float8, extract(epoch from statement_timestamp())::float8) AS now),
                    me AS (
                        INSERT INTO urlpoll_instances (id, host, pid, script_hash, started_at, heartbeat_at, loaded_at)
                        SELECT \(self.instance), \(host), \(pid), \(scriptHash), t.now, t.now, t.now FROM t
                        ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at,
                            script_hash = EXCLUDED.script_hash, loaded_at = EXCLUDED.loaded_at)
                    INSERT INTO urlpoll_schedule (id, script_hash, loaded_by, loaded_at)
                    SELECT 1, \(scriptHash), \(self.instance), t.now FROM t
                    ON CONFLICT (id) DO UPDATE SET script_hash = EXCLUDED.script_hash,
                        loaded_by = EXCLUDED.loaded_by, loaded_at = EXCLUDED.loaded_at
                    """, logger: Self.quiet)
                return (found.schedule, true)
            }
        }
    }

    /// Claims up to `limit` due rows whose lease is free or has expired, earliest due first, skipping rows
    /// another instance is claiming at this moment (`FOR UPDATE SKIP LOCKED`), and leases them to this
    /// instance for their `lease_seconds`. Claims nothing while the schedule follows another script than
    /// `scriptHash`.
    /// - Parameter now: The time to claim at (seconds since the epoch); nil, the database's.
    public func claim(limit: Int, scriptHash: String, now: Double? = nil) async throws(HistoryError) -> [Claim] {
        guard limit > 0 else { return [] }
        return try await self.attempt("claim due URLs") {
            let rows = try await self.client.query(
                """
                WITH t AS (SELECT coalesce(\(now)::float8, extract(epoch from statement_timestamp())::float8) AS now),
                picked AS (
                    SELECT id, lease_until AS prior_lease FROM urlpoll_targets
                    WHERE NOT retired AND due_at <= (SELECT now FROM t)
                        AND (lease_until IS NULL OR lease_until < (SELECT now FROM t))
                        AND EXISTS (SELECT 1 FROM urlpoll_schedule WHERE script_hash = \(scriptHash))
                    ORDER BY due_at LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED)
                UPDATE urlpoll_targets SET lease_owner = \(self.instance),
                    lease_until = (SELECT now FROM t) + lease_seconds, claims = claims + 1
                FROM picked WHERE urlpoll_targets.id = picked.id
                RETURNING urlpoll_targets.id, url, ordinal, name, version, claims, due_at, (SELECT now FROM t),
                    greatest(due_at, coalesce(picked.prior_lease, due_at)), status, state, since,
                    code, error, detail, error_count, latency, polls, checked_at
                """, logger: Self.quiet)
            var claims: [Claim] = []
            for try await row in rows {
                let (id, url, ordinal, name, version, count, due, at, claimable) = try row.decode(
                    (Int64, String, Int, String, Int64, Int64, Double, Double, Double).self)
                let state = try Self.state(from: row, url: url, ordinal: ordinal, name: name, offset: 9)
                claims.append(
                    Claim(
                        id: id, key: HistoryKey(url: url, ordinal: ordinal), version: version, claims: count, due: due,
                        claimedAt: at, claimable: claimable, state: state))
            }
            return claims
        }
    }

    /// Releases this instance's leases on every row but `keeping` (the rows it polls now or has yet to write
    /// back), so that they can be claimed again at once: the leases a claim given up by this instance (its
    /// answer later than ``statementTimeout``, a frozen server) took when the server ran it after all, which
    /// no poll of this instance would ever write back before the lease ended. Locks them in `id` order; a
    /// deadlock (SQLSTATE 40P01) is tried again, up to 4 times in all (``retryingConflicts(_:_:)``).
    /// - Returns: How many leases were released.
    public func releaseLeases(keeping: Set<Int64>) async throws(HistoryError) -> Int {
        let kept = Array(keeping)
        return try await self.attempt("release leases this instance does not use") {
            let rows = try await self.client.query(
                """
                WITH lk AS MATERIALIZED (
                    SELECT id FROM urlpoll_targets
                    WHERE lease_owner = \(self.instance) AND id <> ALL(\(kept)::bigint[])
                    ORDER BY id FOR UPDATE),
                r AS (
                    UPDATE urlpoll_targets SET lease_owner = NULL, lease_until = NULL
                    WHERE id IN (SELECT id FROM lk) AND lease_owner = \(self.instance)
                    RETURNING id)
                SELECT count(*) FROM r
                """, logger: Self.quiet)
            var released = 0
            for try await n in rows.decode(Int64.self) { released = Int(n) }
            return released
        }
    }

    /// When the earliest row falls due or its lease expires (whichever is later), and the time now, both by
    /// the database's clock (or `now`); and the script the schedule follows. Nil `next` for no rows.
    public func nextDue(now: Double? = nil) async throws(HistoryError) -> (
        next: Double?, now: Double, scriptHash: String?
    ) {
        try await self.attempt("read the next due time") {
            let rows = try await self.client.query(
                """
                WITH t AS (SELECT coalesce(\(now)::float8, extract(epoch from statement_timestamp())::float8) AS now)
                SELECT (SELECT min(greatest(due_at, coalesce(lease_until, due_at))) FROM urlpoll_targets
                        WHERE NOT retired),
                    (SELECT now FROM t), (SELECT script_hash FROM urlpoll_schedule WHERE id = 1)
                """, logger: Self.quiet)
            for try await (next, at, hash) in rows.decode((Double?, Double, String?).self) {
                return (next, at, hash)
            }
            return (nil, now ?? 0, nil)
        }
    }

    /// Writes back a batch of polls in one statement: each row's new state, its next due time (the write's
    /// time plus its `delay`) and the lease's release, where the row still has the version and claim this
    /// instance holds; each change into the change log and each poll into its minute's rollup (its latency
    /// into the rollup's sketch, ``LatencySketch/packed``, when it was not down), for those rows only. It locks
    /// its rows in `id` order first (as every multi-row update of the schedule does), so two write-backs, or a
    /// write-back and a sync, never wait for each other's rows; a deadlock with another session all the same
    /// (SQLSTATE 40P01) is tried again, up to 4 times in all, with a line in words (``retryingConflicts(_:_:)``).
    /// - Returns: The ids of the rows whose write counted: written now, or by an earlier try of the same
    ///   batch whose reply was lost. Only for these may `on_change` run.
    public func complete(_ completions: [Completion], now: Double? = nil) async throws(HistoryError) -> Set<Int64> {
        guard !completions.isEmpty else { return [] }
        let rows = completions.map(Self.Written.init).sorted { $0.id < $1.id }
        let json = String(decoding: try Self.encode(rows), as: UTF8.self)
        return try await self.attempt("write back polls") {
            let result = try await self.client.query(
                """
                WITH t AS (SELECT coalesce(\(now)::float8, extract(epoch from statement_timestamp())::float8) AS now),
                u AS (SELECT * FROM jsonb_to_recordset(\(json)::jsonb) AS u(id bigint, version bigint, claims bigint,
                    polled boolean, changed boolean, status text, state text, since float8, code integer,
                    error text, detail text, error_count integer, latency float8, polls bigint, checked_at float8,
                    delay float8, from_state text, from_status text, sketch bigint)),
                prior AS (SELECT p.id FROM urlpoll_targets p JOIN u ON p.id = u.id WHERE p.written_claim = u.claims),
                lk AS MATERIALIZED (
                    SELECT p.id FROM urlpoll_targets p JOIN u ON p.id = u.id
                    WHERE p.version = u.version AND p.claims = u.claims AND p.lease_owner = \(self.instance)
                    ORDER BY p.id FOR UPDATE OF p),
                w AS (
                    UPDATE urlpoll_targets SET status = u.status, state = u.state, since = u.since, code = u.code,
                        error = u.error, detail = u.detail, error_count = u.error_count, latency = u.latency,
                        polls = u.polls, checked_at = u.checked_at, due_at = (SELECT now FROM t) + u.delay,
                        lease_owner = NULL, lease_until = NULL, written_claim = u.claims,
                        version = urlpoll_targets.version + 1
                    FROM u JOIN lk ON lk.id = u.id
                    WHERE urlpoll_targets.id = u.id AND urlpoll_targets.version = u.version
                        AND urlpoll_targets.claims = u.claims AND urlpoll_targets.lease_owner = \(self.instance)
                    RETURNING urlpoll_targets.id, urlpoll_targets.version),
                c AS (
                    INSERT INTO urlpoll_changes (target_id, version, at, from_state, from_status, to_state, to_status,
                        detail, instance)
                    SELECT u.id, w.version, u.checked_at, u.from_state, u.from_status, u.state, u.status,
                        coalesce(u.detail, u.error), \(self.instance)
                    FROM u JOIN w ON w.id = u.id WHERE u.changed
                    ON CONFLICT DO NOTHING),
                r AS (
                    INSERT INTO urlpoll_rollups (target_id, start, polls, failures, degraded, latency_sum, latency_max,
                        sketch)
                    SELECT u.id, (floor(u.checked_at / 60) * 60)::bigint, 1,
                        (u.state = 'down')::integer, (u.state = 'degraded')::integer,
                        CASE WHEN u.state = 'down' THEN 0 ELSE u.latency END,
                        CASE WHEN u.state = 'down' THEN 0 ELSE u.latency END,
                        CASE WHEN u.state = 'down' OR u.sketch IS NULL THEN '{}'::bigint[] ELSE ARRAY[u.sketch] END
                    FROM u JOIN w ON w.id = u.id WHERE u.polled
                    ON CONFLICT (target_id, start) DO UPDATE SET polls = urlpoll_rollups.polls + EXCLUDED.polls,
                        failures = urlpoll_rollups.failures + EXCLUDED.failures,
                        degraded = urlpoll_rollups.degraded + EXCLUDED.degraded,
                        latency_sum = urlpoll_rollups.latency_sum + EXCLUDED.latency_sum,
                        latency_max = greatest(urlpoll_rollups.latency_max, EXCLUDED.latency_max),
                        sketch = urlpoll_rollups.sketch || EXCLUDED.sketch)
                SELECT id FROM w UNION SELECT id FROM prior
                """, logger: Self.quiet)
            var won = Set<Int64>()
            for try await id in result.decode(Int64.self) { won.insert(id) }
            return won
        }
    }

    /// Every listed URL's last state, as the whole fleet polled them: a full read (``fleet(since:on:)``); on
    /// `connection` when one is given, else on the pool's.
    public func fleet(on connection: PostgresConnection? = nil) async throws(HistoryError) -> [State] {
        try await self.fleet(since: nil, on: connection).rows.compactMap(\.state)
    }

    /// Runs `query` on `connection` when one is given, else on a connection of the pool.
    private func query(on connection: PostgresConnection?, _ query: PostgresQuery) async throws
        -> PostgresRowSequence
    {
        if let connection { return try await connection.query(query, logger: Self.quiet) }
        return try await self.client.query(query, logger: Self.quiet)
    }

    /// The state in `row`'s columns from `offset` on (status, state, since, code, error, detail, error_count,
    /// latency, polls, checked_at); nil when the URL was never polled.
    static func state(from row: PostgresRow, url: String, ordinal: Int, name: String, offset: Int) throws
        -> State?
    {
        let columns = Array(row)
        func column<T: PostgresDecodable>(_ i: Int, _ type: T.Type) throws -> T {
            try columns[offset + i].decode(T.self, context: .default)
        }
        guard let status = try column(0, String?.self) else { return nil }
        let health = Health(rawValue: try column(1, String?.self) ?? "") ?? .down
        return State(
            url: url, name: name, ordinal: ordinal, status: status, code: try column(3, Int?.self), health: health,
            error: try column(4, String?.self), detail: try column(5, String?.self),
            errorCount: try column(6, Int.self), latency: .seconds(max(0, try column(7, Double?.self) ?? 0)),
            polls: Int(try column(8, Int64.self)), since: try column(2, Double?.self) ?? 0,
            checkedAt: try column(9, Double?.self) ?? 0)
    }

    /// One row of a write-back, as `jsonb_to_recordset` reads it.
    private struct Written: Encodable {
        var id: Int64
        var version: Int64
        var claims: Int64
        var polled: Bool
        var changed: Bool
        var status: String?
        var state: String?
        var since: Double?
        var code: Int?
        var error: String?
        var detail: String?
        var error_count: Int
        var latency: Double?
        var polls: Int
        var checked_at: Double?
        var delay: Double
        var from_state: String?
        var from_status: String?
        /// The poll's latency as a one-poll ``LatencySketch/packed`` sketch (`bucket × 2^32 + 1`).
        var sketch: Int64?

        init(_ completion: Completion) {
            let state = completion.state ?? completion.claim.state
            self.id = completion.claim.id
            self.version = completion.claim.version
            self.claims = completion.claim.claims
            self.polled = completion.polled && completion.state != nil
            self.changed = completion.changed
            self.status = state?.status
            self.state = state?.health.rawValue
            self.since = state?.since
            self.code = state?.code
            self.error = state?.error
            self.detail = state?.detail
            self.error_count = state?.errorCount ?? 0
            self.latency = state?.latency.seconds
            self.polls = state?.polls ?? 0
            self.checked_at = state?.checkedAt
            self.delay = completion.delay
            self.from_state = completion.claim.state?.health.rawValue
            self.from_status = completion.claim.state?.status
            self.sketch = state.map { LatencySketch.packed(seconds: $0.latency.seconds) }
        }
    }

    private static func encode<T: Encodable>(_ value: T) throws(HistoryError) -> Data {
        do {
            return try JSONEncoder().encode(value)
        } catch {
            throw HistoryError("cannot encode the batch for PostgreSQL: \(error)")
        }
    }

    /// Takes the report lock on `connection` (a connection of its own, ``connectAlone()``): true when this
    /// instance holds it now (it keeps it while the connection lives), false when another instance does.
    ///
    /// A session-level advisory lock is re-entrant: each `pg_try_advisory_lock` that succeeds needs its own
    /// `pg_advisory_unlock` (<https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS>).
    /// A session that holds it already does not take it again, so it holds it once, whatever the ticks.
    public func lead(on connection: PostgresConnection) async throws(HistoryError) -> Bool {
        let high = Int64(UInt64(bitPattern: Self.reportLock) >> 32)
        let low = Self.reportLock & 0xFFFF_FFFF
        return try await self.attempt("take the report lock") {
            for try await held in try await connection.query(
                """
                SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks
                    WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND pid = pg_backend_pid()
                        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        AND classid::bigint = \(high) AND objid::bigint = \(low))
                    THEN true ELSE pg_try_advisory_lock(\(Self.reportLock)) END
                """, logger: Self.quiet
            ).decode(Bool.self) {
                return held
            }
            return false
        }
    }
}
