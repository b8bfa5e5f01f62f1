import FoundationEssentials
import GRDB
import OrderedCollections
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// SQLiteHistoryStore keeps urlpoll's history in one SQLite file, `DIR/urlpoll.sqlite` (`--data DIR`),
/// through GRDB in WAL mode (<https://sqlite.org/wal.html>): one writer, and readers that never wait for it
/// nor hold it up.
///
/// Tables (schema version 5; see docs/SCRIPTING.md, "History"):
/// - `url_state`: one row per URL, keyed by its ``HistoryKey`` (`url` as printed, no password, and its
///   `ordinal` among URLs that print alike; unique together): its id, and the state a restart resumes
///   (status, state, code, error, detail, error count, since; latency, polls and checked_at as of the last
///   write);
/// - `state_change`: every change (url, at, from, to, detail), the incident log, and whether its `on_change`
///   hook has started (`hook_started`: 0 only from the change's commit until just before its hook starts);
/// - `rollup_hour`: per URL per hour: polls, failures (down), degraded, the latency sum and maximum (whole
///   microseconds) and a ``LatencySketch`` of the polls that were not down;
/// - `minute_slots`: per URL per hour, its minutes of one poll (``MinuteSlots``: 60 fixed 4-byte slots),
///   keyed by (hour, url_id); `rollup_minute`: the other minutes (more than one poll), as `rollup_hour`.
///   A URL polled once a minute costs 250 bytes an hour here, not 60 rows of ~40 bytes;
/// - `rollup_day`: per URL per UTC day, the same without the sketch (the status page's daily bars).
///
/// A file written by a newer urlpoll (a schema this one does not know) is refused, never changed.
public final class SQLiteHistoryStore: HistoryStore {
    /// The file name inside the data folder.
    public static let fileName = "urlpoll.sqlite"

    /// The database file's path.
    public let path: String
    private let pool: DatabasePool
    /// Set by ``interrupt()``: the busy handler gives up at once from then on.
    private let interruption: Interruption
    /// The file's device and inode when it was opened, to tell when it is deleted or replaced.
    private let identity: (device: UInt64, inode: UInt64)?
    /// URL → its row in `url_state`: the row id, and the ``State/persistedHash`` of the state the row
    /// holds (0 for none). Only the writer changes it, after its transaction commits.
    ///
    /// At 100,000 URLs this is most of what `--data` adds to urlpoll's memory, so it is kept small: an
    /// `OrderedDictionary` (swift-collections: the keys and rows in two arrays, and a hash table of their
    /// indexes packed in as few bits as the count needs) takes about 50 bytes per URL where a `Dictionary`
    /// took about 105 (its buckets for 100,000 keys are 262,144 of 40 bytes), and a URL's key holds the
    /// same string as its States (the batch's key, never the one SQLite returns), not a copy of its own
    /// (HistoryMemoryTests).
    private let rows = Mutex<OrderedDictionary<HistoryKey, URLRow>>([:])

    /// What the store keeps in memory per URL (16 bytes beside the key).
    private struct URLRow {
        var id: Int64
        /// The ``State/persistedHash`` of the row's state; 0 when it holds none (a hash of 0 counts as
        /// none too: that URL's state is then written with every poll).
        var persisted: Int
    }
    private let written = Atomic<Int>(0)
    /// Row id → a minute (minutes since the epoch) after which the URL's ``MinuteSlots`` are all free: the
    /// last minute of its polls this process committed; for a row found in the file, the last minute of
    /// the latest hour the file has slots of; 0 for a row this process made; ``unknownMinute`` for an id
    /// past the end. A later minute's poll is merged into its hour's row by one upsert, without reading
    /// the row first. 4 bytes per URL; only the writer uses it, taken out for the length of a write.
    private let slotted = Mutex<[UInt32]>([])
    static let unknownMinute = UInt32.max
    /// The minute cutoff of the latest ``prune(before:)`` of this process (seconds since the epoch), or nil
    /// before one: minutes older than it may be gone, so a window by minute reaching back past it reads the
    /// hour rows for its part before the cutoff's hour ends.
    private let minutesPruned = Mutex<Int64?>(nil)

    /// Whether the `-wal` may still hold what a failed write left (see ``truncateWAL()``): it is truncated
    /// before the next write.
    private let walToTruncate = Atomic<Bool>(false)

    public var generation: Int { self.written.load(ordering: .acquiring) }

    /// Opens (creating the folder and the file if needed) the store in `directory`, and brings the schema
    /// to this version.
    /// - Parameter maxPageCount: A cap on the file's pages (SQLite's `max_page_count`), past which writes
    ///   fail as on a full disk; for tests.
    /// - Throws: ``HistoryError`` in words: the folder cannot be made, the file is not a database, or it was
    ///   written by a newer urlpoll.
    public init(directory: String, maxPageCount: Int? = nil) throws(HistoryError) {
        self.path = try Self.prepareFolder(directory)
        var configuration = Configuration()
        // As SQLite's own 5 s busy timeout, in steps of 10 ms, ending at once after ``interrupt()`` (a
        // busy wait is no statement sqlite3_interrupt ends: https://sqlite.org/c3ref/busy_handler.html).
        let interruption = Interruption()
        self.interruption = interruption
        configuration.busyMode = .callback { tries in
            guard !interruption.requested.load(ordering: .relaxed), tries < 500 else { return false }
            usleep(10_000)
            return true
        }
        configuration.label = "urlpoll.history"
        configuration.prepareDatabase { db in
            // WAL with synchronous=NORMAL: a committed tick survives the process being killed; a power
            // loss may take the last ticks back (https://sqlite.org/pragma.html#pragma_synchronous).
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                if let maxPageCount { try db.execute(sql: "PRAGMA max_page_count = \(maxPageCount)") }
            }
            db.add(function: Self.sketchMerge)
            db.add(function: Self.slotsMerge)
        }
        let migrator = Self.migrator
        // GRDB's DatabasePool, opened on a WAL file whose `-wal` is missing or empty (as every clean stop
        // leaves it), creates and drops a table (GRDB issue 102), which bumps SQLite's schema_version. So
        // the schema is read first on a read-only connection, and a file of a newer schema is refused
        // untouched; then a no-op write to the file's header (its user_version, unchanged) fills the `-wal`
        // while the pool opens, so opening an up-to-date file does not change its schema.
        let keeper: DatabaseQueue?
        do {
            keeper = try Self.checkSchema(self.path, migrator: migrator)
        } catch let error as HistoryError {
            throw error
        } catch {
            throw HistoryError("cannot open \(self.path): \(Self.words(error, directory: directory))")
        }
        do {
            self.pool = try DatabasePool(path: self.path, configuration: configuration)
            try keeper?.close()
        } catch {
            throw HistoryError("cannot open \(self.path): \(Self.words(error, directory: directory))")
        }
        do {
            try migrator.migrate(self.pool)
            let rows = try self.pool.read { db in
                var rows: OrderedDictionary<HistoryKey, URLRow> = [:]
                rows.reserveCapacity(try Int.fetchOne(db, sql: "SELECT count(*) FROM url_state") ?? 0)
                for row in try Row.fetchAll(db, sql: "SELECT * FROM url_state") {
                    let state: State? = row["status"] == nil ? nil : Self.state(row)
                    rows[Self.key(row)] = URLRow(id: row["id"], persisted: state?.persistedHash ?? 0)
                }
                return rows
            }
            self.rows.withLock { $0 = rows }
            let (lastID, lastHour) = try self.pool.read { db in
                (
                    try Int64.fetchOne(db, sql: "SELECT max(id) FROM url_state") ?? 0,
                    try Int64.fetchOne(db, sql: "SELECT max(hour) FROM minute_slots")
                )
            }
            let floor = lastHour.map { UInt32(clamping: ($0 - $0.modulo(3_600) + 3_600) / 60 - 1) } ?? 0
            self.slotted.withLock { $0 = Array(repeating: floor, count: Int(clamping: lastID) + 1) }
            // The reader that read them closes, with its page cache (up to 2 MB, SQLite's default
            // `cache_size`); readers open again when the script or `/status` first reads.
            self.pool.releaseMemory()
            var info = stat()
            self.identity = stat(self.path, &info) == 0 ? (UInt64(info.st_dev), UInt64(info.st_ino)) : nil
        } catch let error as HistoryError {
            throw error
        } catch {
            throw HistoryError("cannot open \(self.path): \(Self.words(error, directory: directory))")
        }
    }

    /// Refuses (``HistoryError``) the file at `path` when a newer urlpoll wrote it, having only read it;
    /// otherwise, for an existing file, returns a connection that holds a write in its `-wal` (see
    /// ``init(directory:maxPageCount:)``), to be closed once the pool is open. Nil for a new file.
    private static func checkSchema(_ path: String, migrator: DatabaseMigrator) throws -> DatabaseQueue? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_size > 0 else { return nil }
        var readOnly = Configuration()
        readOnly.readonly = true
        let reader = try DatabaseQueue(path: path, configuration: readOnly)
        let (superseded, applied) = try reader.read { db in
            (try migrator.hasBeenSuperseded(db), try migrator.appliedIdentifiers(db))
        }
        try reader.close()
        if superseded {
            let unknown = applied.subtracting(Set(migrator.migrations)).sorted().joined(separator: ", ")
            throw HistoryError(
                "\(path) was written by a newer urlpoll (schema \(unknown); this urlpoll knows up to \(migrator.migrations.last ?? "none")): it is left as it is; run that newer urlpoll, or give another --data folder"
            )
        }
        var writable = Configuration()
        writable.busyMode = .timeout(5)
        let keeper = try DatabaseQueue(path: path, configuration: writable)
        try keeper.writeWithoutTransaction { db in
            let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
            if try String.fetchOne(db, sql: "PRAGMA journal_mode") == "wal" {
                try db.execute(sql: "PRAGMA user_version = \(version)")
            }
        }
        return keeper
    }

    /// Makes the data folder `directory` if it is missing and says where its database file is
    /// (`DIR/urlpoll.sqlite`), without opening it: a caller takes the folder's lock on that path first
    /// (``StateFileLock``), so that two urlpolls started at once never migrate one new file together.
    /// - Throws: ``HistoryError`` in words: the path is empty, is (or runs through) a file, the folder cannot
    ///   be made, or urlpoll may not write in it (`permission denied`, with the path).
    public static func prepareFolder(_ directory: String) throws(HistoryError) -> String {
        guard !directory.isEmpty else {
            throw HistoryError("the data folder is empty: give a folder path (it is made if missing)")
        }
        if let file = Self.file(onPath: directory) {
            // mkdir(2) would say `File exists` or `Not a directory`, which leaves the reader to guess.
            throw HistoryError("cannot use \(directory) as the data folder: \(file) is a file, not a folder")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            // FileManager's error is Foundation's dump; mkdir(2) says why in words.
            let reason = mkdir(directory, 0o755) == 0 ? "\(error)" : String(cString: strerror(errno))
            throw HistoryError("cannot create the data folder \(directory): \(reason)")
        }
        // SQLite would say `unable to open database file (SQLite 14)`; access(2) says why.
        if access(directory, W_OK | X_OK) != 0 {
            throw HistoryError(
                "cannot write in the data folder \(directory): \(String(cString: strerror(errno)).lowercased())")
        }
        return directory.hasSuffix("/") ? directory + Self.fileName : directory + "/" + Self.fileName
    }

    /// The first path on the way to `directory` (itself, or a folder above it) that exists and is not a
    /// folder (a regular file, a device…; symbolic links followed), or nil.
    static func file(onPath directory: String) -> String? {
        var path = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            path += "/" + component
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }  // missing (made below) or unreadable (said below)
            if info.st_mode & S_IFMT != S_IFDIR { return directory.hasPrefix("/") ? path : String(path.dropFirst(2)) }
        }
        return nil
    }

    /// The schema, one migration per version; a migration is never edited once released.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE url_state (
                      id INTEGER PRIMARY KEY, url TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
                      status TEXT, state TEXT, code INTEGER, error TEXT, detail TEXT,
                      error_count INTEGER NOT NULL DEFAULT 0, latency REAL NOT NULL DEFAULT 0,
                      polls INTEGER NOT NULL DEFAULT 0, since REAL, checked_at REAL);
                    CREATE TABLE state_change (
                      id INTEGER PRIMARY KEY, url_id INTEGER NOT NULL REFERENCES url_state(id), at REAL NOT NULL,
                      from_state TEXT, from_status TEXT, to_state TEXT NOT NULL, to_status TEXT NOT NULL, detail TEXT);
                    CREATE INDEX state_change_by_url ON state_change(url_id, at);
                    CREATE TABLE rollup_minute (
                      url_id INTEGER NOT NULL, start INTEGER NOT NULL, polls INTEGER NOT NULL,
                      failures INTEGER NOT NULL, degraded INTEGER NOT NULL, latency_sum REAL NOT NULL,
                      latency_max REAL NOT NULL, sketch BLOB NOT NULL, PRIMARY KEY (url_id, start)) WITHOUT ROWID;
                    CREATE TABLE rollup_hour (
                      url_id INTEGER NOT NULL, start INTEGER NOT NULL, polls INTEGER NOT NULL,
                      failures INTEGER NOT NULL, degraded INTEGER NOT NULL, latency_sum REAL NOT NULL,
                      latency_max REAL NOT NULL, sketch BLOB NOT NULL, PRIMARY KEY (url_id, start)) WITHOUT ROWID;
                    """)
        }
        // v1 keyed `url_state` by the printed URL alone, so two URLs that differ only by their password
        // shared one row, their polls, changes and resumed state. v2 keys it by the printed URL and the
        // URL's ordinal among those that print alike (``HistoryKey``). A file v1 wrote keeps its rows, each
        // as ordinal 1 (what was mixed cannot be told apart). SQLite cannot drop a UNIQUE constraint, so the
        // table is rebuilt (https://sqlite.org/lang_altertable.html#otheralter; GRDB runs a migration with
        // foreign keys off, and checks them before it commits).
        migrator.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    CREATE TABLE url_state_v2 (
                      id INTEGER PRIMARY KEY, url TEXT NOT NULL, ordinal INTEGER NOT NULL DEFAULT 1,
                      name TEXT NOT NULL, status TEXT, state TEXT, code INTEGER, error TEXT, detail TEXT,
                      error_count INTEGER NOT NULL DEFAULT 0, latency REAL NOT NULL DEFAULT 0,
                      polls INTEGER NOT NULL DEFAULT 0, since REAL, checked_at REAL, UNIQUE (url, ordinal));
                    INSERT INTO url_state_v2 (id, url, name, status, state, code, error, detail, error_count,
                      latency, polls, since, checked_at)
                    SELECT id, url, name, status, state, code, error, detail, error_count, latency, polls, since,
                      checked_at FROM url_state;
                    DROP TABLE url_state;
                    ALTER TABLE url_state_v2 RENAME TO url_state;
                    """)
        }
        // v3 adds day rollups (UTC days: polls, failures, degraded, latency sum and maximum; no sketch), so
        // `/status`'s 90 days of daily uptime read 90 rows per URL, not 2,160 hour rows. A file v2 wrote
        // gets its days summed from its hour rollups.
        migrator.registerMigration("v3") { db in
            try db.execute(
                sql: """
                    CREATE TABLE rollup_day (
                      url_id INTEGER NOT NULL, start INTEGER NOT NULL, polls INTEGER NOT NULL,
                      failures INTEGER NOT NULL, degraded INTEGER NOT NULL, latency_sum REAL NOT NULL,
                      latency_max REAL NOT NULL, PRIMARY KEY (url_id, start)) WITHOUT ROWID;
                    INSERT INTO rollup_day (url_id, start, polls, failures, degraded, latency_sum, latency_max)
                    SELECT url_id, start - start % 86400, sum(polls), sum(failures), sum(degraded), sum(latency_sum),
                      max(latency_max) FROM rollup_hour GROUP BY url_id, start - start % 86400;
                    """)
        }
        // v4 makes the file about a sixth of v3's size at 10,000 URLs polled once a minute: a minute that
        // saw one poll (every minute of such a URL) is a 4-byte slot in one `minute_slots` row per URL per
        // hour (``MinuteSlots``) instead of a `rollup_minute` row of ~40 bytes, and the rollups keep their
        // latencies as whole microseconds (`latency_sum_us`, `latency_max_us`: 3 or 4 bytes) instead of
        // 8-byte REALs. `minute_slots` is keyed by (hour, url_id), so each hour's rows are appended after
        // the last hour's and a prune deletes whole pages from the front. A file v3 wrote keeps all of
        // its minutes: those of one poll move into slots, the others stay rows. And `state_change_by_time`
        // lets the status page read the latest changes of all URLs without sorting the whole log.
        migrator.registerMigration("v4") { db in
            try db.execute(
                sql: """
                    CREATE TABLE minute_slots (
                      hour INTEGER NOT NULL, url_id INTEGER NOT NULL, slots BLOB NOT NULL,
                      PRIMARY KEY (hour, url_id)) WITHOUT ROWID;
                    CREATE INDEX state_change_by_time ON state_change(at);
                    """)
            let rows = try Row.fetchCursor(
                db,
                sql: """
                    SELECT url_id, start, polls, failures, degraded, latency_max FROM rollup_minute WHERE polls = 1
                    ORDER BY start - start % 3600, url_id
                    """)
            let insert = try db.makeStatement(sql: "INSERT INTO minute_slots (hour, url_id, slots) VALUES (?, ?, ?)")
            var current: (hour: Int64, urlID: Int64, slots: MinuteSlots)?
            while let row = try rows.next() {
                let start: Int64 = row["start"]
                let hour = start - start % 3_600
                let urlID: Int64 = row["url_id"]
                if let kept = current, kept.hour != hour || kept.urlID != urlID {
                    try insert.execute(arguments: [kept.hour, kept.urlID, Data(kept.slots.bytes)])
                    current = nil
                }
                var rollup = Rollup(start: start)
                rollup.polls = 1
                rollup.failures = row["failures"]
                rollup.degraded = row["degraded"]
                rollup.latencyMax = row["latency_max"]
                var slots = current?.slots ?? MinuteSlots()
                _ = slots.put(rollup, minute: Int(start - hour) / 60)
                current = (hour, urlID, slots)
            }
            if let kept = current { try insert.execute(arguments: [kept.hour, kept.urlID, Data(kept.slots.bytes)]) }
            for (table, kept) in [("rollup_minute", "WHERE polls > 1"), ("rollup_hour", "")] {
                try db.execute(
                    sql: """
                        CREATE TABLE \(table)_v4 (
                          url_id INTEGER NOT NULL, start INTEGER NOT NULL, polls INTEGER NOT NULL,
                          failures INTEGER NOT NULL, degraded INTEGER NOT NULL, latency_sum_us INTEGER NOT NULL,
                          latency_max_us INTEGER NOT NULL, sketch BLOB NOT NULL, PRIMARY KEY (url_id, start)) WITHOUT ROWID;
                        INSERT INTO \(table)_v4 SELECT url_id, start, polls, failures, degraded,
                          CAST(round(latency_sum * 1000000) AS INTEGER), CAST(round(latency_max * 1000000) AS INTEGER),
                          sketch FROM \(table) \(kept);
                        DROP TABLE \(table);
                        ALTER TABLE \(table)_v4 RENAME TO \(table);
                        """)
            }
        }
        // v5 keeps, per change, whether its `on_change` hook has started (`hook_started`), so that a start
        // replays the hooks a kill kept from starting (``takeUnstartedChanges(since:limit:)``). The changes a
        // file already holds count as started: they are never replayed. Only a change committed for a hook
        // is written 0, and set to 1 just before its hook starts; the partial index holds only those, so the
        // start reads them without scanning the log.
        migrator.registerMigration("v5") { db in
            try db.execute(
                sql: """
                    ALTER TABLE state_change ADD COLUMN hook_started INTEGER NOT NULL DEFAULT 1;
                    CREATE INDEX state_change_unhooked ON state_change(at) WHERE hook_started = 0;
                    """)
        }
        return migrator
    }

    // MARK: Hooks started

    public func markHooksStarted(_ changes: [HistoryChange]) async throws(HistoryError) {
        let marks = self.rows.withLock { rows in
            changes.compactMap { change in rows[change.key].map { (id: $0.id, at: change.at) } }
        }
        guard !marks.isEmpty else { return }
        do {
            try await self.pool.write { db in
                let mark = try db.cachedStatement(
                    sql: "UPDATE state_change SET hook_started = 1 WHERE url_id = ? AND at = ? AND hook_started = 0")
                for (id, at) in marks { try mark.execute(arguments: [id, at]) }
            }
        } catch {
            throw HistoryError("cannot write \(self.path): \(Self.words(error))")
        }
    }

    /// The changes committed for an `on_change` hook that never started (urlpoll was killed between the
    /// change's commit and its hook), to be hooked again at a start: those at or after `since` (seconds
    /// since the epoch), the latest `limit` of them, oldest first, each as its state (``State/replayed``
    /// set) and its previous state. The state is the URL's saved state when the change is the URL's latest
    /// and the saved state still has its state and status, else one made from the change row (status, state, detail, `at` as `since` and
    /// `checked_at`); the previous state has the change's `from` state and status, nil for a first result.
    /// In the same transaction, every change not hooked yet, replayed or not (older, or past `limit`), is
    /// marked started, so that none is replayed twice. Returns the replayed changes and how many were left
    /// out.
    public func takeUnstartedChanges(since: Double, limit: Int) throws(HistoryError) -> (
        changes: [(state: State, previous: State?)], skipped: Int
    ) {
        do {
            return try self.pool.write { db in
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT * FROM (
                          SELECT c.id AS change_id, c.at, c.from_state, c.from_status, c.to_state, c.to_status,
                            c.detail AS change_detail,
                            NOT EXISTS (SELECT 1 FROM state_change l WHERE l.url_id = c.url_id AND l.id > c.id) AS latest,
                            u.*
                          FROM state_change c JOIN url_state u ON u.id = c.url_id
                          WHERE c.hook_started = 0 AND c.at >= ? ORDER BY c.at DESC, c.id DESC LIMIT ?)
                        ORDER BY at, change_id
                        """, arguments: [since, max(0, limit)])
                try db.execute(sql: "UPDATE state_change SET hook_started = 1 WHERE hook_started = 0")
                let marked = db.changesCount
                let changes = rows.map { row -> (state: State, previous: State?) in
                    let key = Self.key(row)
                    let name: String = row["name"]
                    let at: Double = row["at"]
                    let status: String = row["to_status"] ?? ""
                    let health = Health(rawValue: row["to_state"] ?? "") ?? .down
                    var state: State
                    if row["latest"] as Bool? == true, row["status"] as String? == status,
                        row["state"] as String? == health.rawValue
                    {
                        state = Self.state(row)
                    } else {
                        let detail: String? = row["change_detail"]
                        state = State(
                            url: key.url, name: name, ordinal: key.ordinal, status: status, health: health,
                            error: health == .down ? detail : nil, detail: health == .down ? nil : detail,
                            errorCount: health == .down ? 1 : 0, since: at, checkedAt: at)
                    }
                    state.replayed = true
                    let previous = (row["from_state"] as String?).flatMap(Health.init(rawValue:)).map { from in
                        State(
                            url: key.url, name: name, ordinal: key.ordinal, status: row["from_status"] ?? "",
                            health: from, checkedAt: at)
                    }
                    return (state, previous)
                }
                return (changes, max(0, marked - changes.count))
            }
        } catch {
            throw HistoryError("cannot read \(self.path): \(Self.words(error))")
        }
    }

    /// Sets ``slotted``'s entry of row `id` to `minute`, growing it (new entries unknown) as needed.
    static func setMinute(_ minute: UInt32, of id: Int64, in slotted: inout [UInt32]) {
        guard id >= 0, id < Int64(Int32.max) else { return }
        if Int(id) >= slotted.count {
            slotted.append(contentsOf: repeatElement(Self.unknownMinute, count: Int(id) + 1 - slotted.count))
        }
        slotted[Int(id)] = minute
    }

    /// Whole microseconds, as the rollups keep latencies (from seconds).
    static func microseconds(_ seconds: Double) -> Int64 {
        seconds.isFinite ? Int64(min(max(seconds * 1_000_000, 0), 1e15).rounded()) : 0
    }

    /// `sketch_merge(a, b)`: two encoded ``LatencySketch``es added together, for the rollups' upserts.
    static let sketchMerge = DatabaseFunction("sketch_merge", argumentCount: 2, pure: true) { values in
        var merged = LatencySketch()
        for value in values {
            if let data = Data.fromDatabaseValue(value), let sketch = LatencySketch(encoded: Array(data)) {
                merged.merge(sketch)
            }
        }
        return Data(merged.encoded)
    }

    /// `slots_merge(kept, new)`: the ``MinuteSlots`` `kept` with the minutes `new` holds put in its free
    /// slots (a taken slot keeps its poll); `new` when `kept` is not slots. For the upsert of minutes known
    /// to be free (``slotted``).
    static let slotsMerge = DatabaseFunction("slots_merge", argumentCount: 2, pure: true) { values in
        guard let new = Data.fromDatabaseValue(values[1]) else { return nil }
        guard let data = Data.fromDatabaseValue(values[0]), var kept = MinuteSlots(encoded: Array(data)),
            let added = MinuteSlots(encoded: Array(new))
        else { return new }
        kept.merge(added)
        return Data(kept.bytes)
    }

    // MARK: Writing

    public func savedStates() throws(HistoryError) -> [State] {
        do {
            return try self.pool.read { db in
                try Self.resumed(db)
            }
        } catch {
            throw HistoryError("cannot read \(self.path): \(Self.words(error))")
        }
    }

    /// Each `url_state` row's state (its status not null), its `polls` counted on to the last tick written:
    /// the row is written only when the state changes, so the polls the rollups counted after the row's
    /// poll are added (the days after its day, the hours of its day after its hour, the minutes of its hour
    /// after its minute, and its minute's other polls). Bounded per URL by the days since its last change.
    /// Polls more often than once a minute count their minute whole: a poll of the row's minute before it
    /// is counted twice (never fewer polls than were made); minutes pruned in the row's hour are not counted.
    private static func resumed(_ db: Database) throws -> [State] {
        let statements = try [
            "SELECT coalesce(sum(polls), 0) FROM rollup_day WHERE url_id = ? AND start > ?",
            "SELECT coalesce(sum(polls), 0) FROM rollup_hour WHERE url_id = ? AND start > ? AND start < ?",
            "SELECT coalesce(sum(polls), 0) FROM rollup_minute WHERE url_id = ? AND start >= ? AND start < ?",
        ].map { try db.cachedStatement(sql: $0) }
        let slots = try db.cachedStatement(sql: "SELECT slots FROM minute_slots WHERE hour = ? AND url_id = ?")
        var states: [State] = []
        let rows = try Row.fetchCursor(
            db, sql: "SELECT * FROM url_state WHERE status IS NOT NULL ORDER BY url, ordinal")
        while let row = try rows.next() {
            var state = Self.state(row)
            let id: Int64 = row["id"]
            if let at: Double = row["checked_at"], at.isFinite, abs(at) < 1e15 {
                let second = Int64(at.rounded(.down))
                let minute = second - second.modulo(60)
                let hour = second - second.modulo(3_600)
                let day = second - second.modulo(86_400)
                var after = try Int.fetchOne(statements[0], arguments: [id, day]) ?? 0
                after += try Int.fetchOne(statements[1], arguments: [id, hour, day + 86_400]) ?? 0
                after += try Int.fetchOne(statements[2], arguments: [id, minute, hour + 3_600]) ?? 0
                if let data = try Data.fetchOne(slots, arguments: [hour, id]),
                    let kept = MinuteSlots(encoded: Array(data))
                {
                    for slot in Int((minute - hour) / 60)..<MinuteSlots.count {
                        after += kept.rollup(minute: slot, start: hour + Int64(slot) * 60)?.polls ?? 0
                    }
                }
                // The row's own poll is in its minute's count.
                state.polls += max(0, after - 1)
            }
            states.append(state)
        }
        return states
    }

    /// A `url_state` row's state (its status not null).
    private static func state(_ row: Row) -> State {
        State(
            url: row["url"], name: row["name"], ordinal: row["ordinal"], status: row["status"], code: row["code"],
            health: Health(rawValue: row["state"] ?? "") ?? .down, error: row["error"], detail: row["detail"],
            errorCount: max(0, row["error_count"] as Int), latency: .seconds(max(0, row["latency"] as Double)),
            polls: max(0, row["polls"] as Int), since: row["since"] ?? 0, checkedAt: row["checked_at"] ?? 0)
    }

    /// Ends the statement running (SQLite's `sqlite3_interrupt`, <https://sqlite.org/c3ref/interrupt.html>,
    /// through GRDB's `interrupt()`) and any wait for another connection's lock, now and from then on: each
    /// later write fails at once with `SQLITE_INTERRUPT` or `SQLITE_BUSY`. For the stop's time limit.
    public func interrupt() {
        self.interruption.requested.store(true, ordering: .relaxed)
        self.pool.interrupt()
    }

    /// Whether ``interrupt()`` was called; shared with the busy handler.
    private final class Interruption: Sendable {
        let requested = Atomic<Bool>(false)
    }

    public func persistedHash(of key: HistoryKey) -> Int? {
        guard let hash = self.rows.withLock({ $0[key]?.persisted }), hash != 0 else { return nil }
        return hash
    }

    public func write(_ batch: HistoryBatch) async throws(HistoryError) {
        if self.walToTruncate.load(ordering: .acquiring) { await self.truncateWAL() }
        do {
            var slotted = self.slotted.withLock { slotted in
                var taken: [UInt32] = []
                swap(&taken, &slotted)
                return taken
            }
            defer { self.slotted.withLock { swap(&$0, &slotted) } }
            let committed = slotted
            let (added, written) = try await self.pool.write { db -> ([HistoryKey: Int64], [UInt32]) in
                // Every statement is prepared once per connection (GRDB's cache), not once per row, and rows
                // go in multi-row statements (``MultiRowInsert``): at 100,000 URLs one statement per row cost
                // most of the writer's time.
                let added = try self.insertURLs(batch, db: db)
                func id(_ key: HistoryKey) throws -> Int64 {
                    // Looked up key by key: a copy of the whole map, kept while `added` is merged in, would
                    // make the merge copy it again (100,000 URLs: 8 MB each).
                    if let id = added.ids[key] ?? self.rows.withLock({ $0[key]?.id }) { return id }
                    throw HistoryError("no url_state row for \(key.url)")
                }
                let update = try db.cachedStatement(
                    sql: """
                        UPDATE url_state SET name = ?, status = ?, state = ?, code = ?, error = ?, detail = ?,
                          error_count = ?, latency = ?, polls = ?, since = ?, checked_at = ? WHERE id = ?
                        """)
                // In row order, as the rollups below: each page of the table is changed once, front to back.
                // The states of new rows went in with them.
                let states = try batch.states.compactMap { key, s in
                    added.ids[key] != nil && !added.existing.contains(key) ? nil : (id: try id(key), state: s)
                }
                for (urlID, s) in states.sorted(by: { $0.id < $1.id }) {
                    try update.execute(arguments: [
                        s.name, s.status, s.health.rawValue, s.code, s.error, s.detail, s.errorCount, s.latency.seconds,
                        s.polls, s.since, s.checkedAt, urlID,
                    ])
                }
                var change = MultiRowInsert(
                    db,
                    "INSERT INTO state_change (url_id, at, from_state, from_status, to_state, to_status, detail, hook_started)",
                    columns: 8)
                for c in batch.changes {
                    try change.append(
                        try id(c.key), c.at, c.from?.rawValue, c.fromStatus, c.to.rawValue, c.toStatus, c.detail,
                        c.hookPending ? 0 : 1)
                }
                try change.flush()
                // The rollups row by row: as multi-row upserts they took about a tenth longer.
                let rollups = try RollupStatements(db)
                // The rows made by this write have no minute slots yet; a copy, changed only once committed.
                var minutes = committed
                for (key, id) in added.ids where !added.existing.contains(key) {
                    Self.setMinute(0, of: id, in: &minutes)
                }
                func write(_ urlID: Int64, _ m: [Rollup], _ h: [Rollup], _ d: [Rollup]) throws {
                    let free = urlID >= 0 && urlID < minutes.count ? minutes[Int(urlID)] : Self.unknownMinute
                    if let last = try rollups.write(urlID: urlID, minutes: m, hours: h, days: d, freeAfter: free),
                        free != Self.unknownMinute
                    {
                        Self.setMinute(max(free, last), of: urlID, in: &minutes)
                    }
                }
                for key in Set(batch.minutes.keys).union(batch.hours.keys).union(batch.days.keys) {
                    try write(
                        try id(key), Array((batch.minutes[key] ?? [:]).values), Array((batch.hours[key] ?? [:]).values),
                        Array((batch.days[key] ?? [:]).values))
                }
                try batch.forEachCounted(by: id) { urlID, m, h, d in try write(urlID, m, h, d) }
                return (added.ids, minutes)
            }
            slotted = written
            let hashes = batch.states.map { key, state in (key, state.persistedHash) }
            self.rows.withLock { rows in
                for (key, id) in added where rows[key] == nil { rows[key] = URLRow(id: id, persisted: 0) }
                for (key, hash) in hashes { rows[key]?.persisted = hash }
            }
            self.written.add(1, ordering: .releasing)
            if self.walOutgrowsFreeSpace() { await self.truncateWAL() }
        } catch {
            await self.truncateWAL()
            throw HistoryError(
                "cannot write to \(self.path): \(Self.words(error, directory: Self.folder(of: self.path)))")
        }
    }

    /// After a failed write (a full disk: SQLITE_FULL or SQLITE_IOERR), ends any transaction it left open
    /// and checkpoints the `-wal` into the file, truncating it to nothing (SQLite's
    /// `wal_checkpoint(TRUNCATE)`, <https://sqlite.org/c3ref/wal_checkpoint_v2.html>). A failed write leaves
    /// its pages in the `-wal`, which keeps its size; and SQLite checkpoints on its own only once the `-wal`
    /// holds 1,000 pages (about 4 MB), so on a smaller disk the `-wal` took all of it and kept whatever
    /// space was freed. The checkpoint needs room for the file to grow, so when it fails too it is tried
    /// again before the next write, until space is freed. Also run after a write once the `-wal` outgrows
    /// the free space (``walOutgrowsFreeSpace()``).
    private func truncateWAL() async {
        do {
            try await self.pool.writeWithoutTransaction { db in
                if db.isInsideTransaction { try db.rollback() }
                try db.checkpoint(.truncate)
            }
            self.walToTruncate.store(false, ordering: .releasing)
        } catch {
            self.walToTruncate.store(true, ordering: .releasing)
        }
    }

    /// Whether the `-wal` is larger than the space left on its disk: SQLite's own checkpoint comes at about
    /// 4 MB of `-wal`, and a checkpoint needs room for the file to grow into, so on a small disk the `-wal`
    /// is checkpointed (``truncateWAL()``) while there is still room, before it fills the disk.
    private func walOutgrowsFreeSpace() -> Bool {
        var info = stat()
        guard stat(self.path + "-wal", &info) == 0, info.st_size > 0,
            let free = Self.freeBytes(Self.folder(of: self.path))
        else { return false }
        return UInt64(info.st_size) > free
    }

    /// Gives each URL of `batch` that has no row yet its `url_state` row, with its state when the batch has
    /// one, in multi-row inserts of up to ``MultiRowInsert/rowsPerStatement`` rows: at a start with 100,000
    /// URLs, a few hundred statements instead of 200,000 (an insert and an update per URL). The keys are
    /// taken from the batch's maps as they come, 256 at a time, with no list or set of them all.
    /// Returns the new rows' ids, and the keys among them whose row the file held already (a row not in
    /// ``rows``): their state, if any, is written by the update.
    private func insertURLs(_ batch: HistoryBatch, db: Database) throws -> (
        ids: [HistoryKey: Int64], existing: Set<HistoryKey>
    ) {
        var ids: [HistoryKey: Int64] = [:]
        var existing = Set<HistoryKey>()
        var pending: [HistoryKey] = []
        var values: [DatabaseValue] = []
        let columns = 13
        let row = "(" + repeatElement("?", count: columns).joined(separator: ",") + ")"
        let select = try db.cachedStatement(sql: "SELECT id FROM url_state WHERE url = ? AND ordinal = ?")
        func flush() throws {
            var start = 0
            while start < pending.count {
                // 256 rows, then the rest as 128, 64, … rows: a few statement texts, each cached.
                var size = MultiRowInsert.rowsPerStatement
                while size > pending.count - start { size /= 2 }
                values.removeAll(keepingCapacity: true)
                for key in pending[start..<start + size] {
                    let row: [(any DatabaseValueConvertible)?] =
                        if let s = batch.states[key] {
                            [
                                key.url, key.ordinal, s.name, s.status, s.health.rawValue, s.code, s.error, s.detail,
                                s.errorCount, s.latency.seconds, s.polls, s.since, s.checkedAt,
                            ]
                        } else {
                            [key.url, key.ordinal, key.description, nil, nil, nil, nil, nil, 0, 0.0, 0, nil, nil]
                        }
                    for value in row { values.append(value?.databaseValue ?? .null) }
                }
                let statement = try db.cachedStatement(
                    sql: """
                        INSERT INTO url_state (url, ordinal, name, status, state, code, error, detail, error_count,
                          latency, polls, since, checked_at)
                        VALUES \(repeatElement(row, count: size).joined(separator: ","))
                        ON CONFLICT (url, ordinal) DO NOTHING RETURNING id, url, ordinal
                        """)
                let inserted = try Row.fetchCursor(statement, arguments: StatementArguments(values))
                // Keyed by the batch's own keys, whose URL strings the States share: the keys SQLite returns
                // are copies, and kept in ``rows`` they took some 80 bytes per URL.
                var returned: [HistoryKey: Int64] = [:]
                while let row = try inserted.next() { returned[Self.key(row)] = row["id"] }
                for key in pending[start..<start + size] { ids[key] = returned[key] }
                start += size
            }
            // A row the file held already (not in `rows`): its id; its state is written by the update.
            for key in pending where ids[key] == nil {
                guard let id = try Int64.fetchOne(select, arguments: [key.url, key.ordinal]) else {
                    throw HistoryError("no url_state row for \(key.url) after inserting it")
                }
                ids[key] = id
                existing.insert(key)
            }
            pending.removeAll(keepingCapacity: true)
        }
        func add(_ key: HistoryKey) throws {
            guard ids[key] == nil, self.rows.withLock({ $0[key] == nil }) else { return }
            pending.append(key)
            if pending.count == MultiRowInsert.rowsPerStatement { try flush() }
        }
        // Each key once: a source's keys are skipped when an earlier source has them (a key twice in one
        // insert would only cost a look-up: the second is not inserted, and is then found by `select`).
        let counted = batch.countedKeys
        for key in batch.states.keys { try add(key) }
        for key in counted where batch.states[key] == nil { try add(key) }
        func listed(_ key: HistoryKey) -> Bool { batch.states[key] != nil || counted.contains(key) }
        for key in batch.minutes.keys where !listed(key) { try add(key) }
        for key in batch.hours.keys where !listed(key) && batch.minutes[key] == nil { try add(key) }
        for key in batch.days.keys where !listed(key) && batch.minutes[key] == nil && batch.hours[key] == nil {
            try add(key)
        }
        var changed = Set<HistoryKey>()
        for change in batch.changes
        where !listed(change.key) && batch.minutes[change.key] == nil && batch.hours[change.key] == nil
            && batch.days[change.key] == nil && changed.insert(change.key).inserted
        {
            try add(change.key)
        }
        try flush()
        return (ids, existing)
    }

    /// The statements that add one URL's rollups to what the file holds, prepared once per write.
    private struct RollupStatements {
        let hour: Statement
        let minute: Statement
        let readSlots: Statement
        let writeSlots: Statement
        let mergeSlots: Statement
        let day: Statement

        init(_ db: Database) throws {
            func upsert(_ table: String) throws -> Statement {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO \(table) (url_id, start, polls, failures, degraded, latency_sum_us,
                          latency_max_us, sketch)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (url_id, start) DO UPDATE SET polls = polls + excluded.polls,
                          failures = failures + excluded.failures, degraded = degraded + excluded.degraded,
                          latency_sum_us = latency_sum_us + excluded.latency_sum_us,
                          latency_max_us = max(latency_max_us, excluded.latency_max_us),
                          sketch = sketch_merge(sketch, excluded.sketch)
                        """)
            }
            self.hour = try upsert("rollup_hour")
            self.minute = try upsert("rollup_minute")
            self.readSlots = try db.cachedStatement(sql: "SELECT slots FROM minute_slots WHERE hour = ? AND url_id = ?")
            self.mergeSlots = try db.cachedStatement(
                sql: """
                    INSERT INTO minute_slots (hour, url_id, slots) VALUES (?, ?, ?)
                    ON CONFLICT (hour, url_id) DO UPDATE SET slots = slots_merge(slots, excluded.slots)
                    """)
            self.writeSlots = try db.cachedStatement(
                sql: """
                    INSERT INTO minute_slots (hour, url_id, slots) VALUES (?, ?, ?)
                    ON CONFLICT (hour, url_id) DO UPDATE SET slots = excluded.slots
                    """)
            self.day = try db.cachedStatement(
                sql: """
                    INSERT INTO rollup_day (url_id, start, polls, failures, degraded, latency_sum, latency_max)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (url_id, start) DO UPDATE SET polls = polls + excluded.polls,
                      failures = failures + excluded.failures, degraded = degraded + excluded.degraded,
                      latency_sum = latency_sum + excluded.latency_sum,
                      latency_max = max(latency_max, excluded.latency_max)
                    """)
        }

        static func arguments(_ urlID: Int64, _ r: Rollup) -> StatementArguments {
            [
                urlID, r.start, r.polls, r.failures, r.degraded, SQLiteHistoryStore.microseconds(r.latencySum),
                SQLiteHistoryStore.microseconds(r.latencyMax), Data(r.sketch.encoded),
            ]
        }

        /// Adds one URL's rollups of a batch: `minutes`, `hours` and `days` each one rollup per bucket.
        /// `freeAfter` is the URL's last minute whose poll was committed (minutes since the epoch; 0 for
        /// none, ``SQLiteHistoryStore/unknownMinute`` when not known): every later minute's slot is free.
        /// Returns the last of `minutes` (minutes since the epoch), nil without any.
        func write(urlID: Int64, minutes: [Rollup], hours: [Rollup], days: [Rollup], freeAfter: UInt32) throws
            -> UInt32?
        {
            for r in hours { try self.hour.execute(arguments: Self.arguments(urlID, r)) }
            // A minute of one poll goes into its hour's slots while its slot is free; any other (more polls,
            // or a second batch's polls of a minute already kept) is a minute row. An hour whose minutes
            // here all come after `freeAfter` has them merged into its row by one upsert (at one poll a
            // minute, every batch but the first after a restart); any other hour's slots are read and
            // written once.
            let minutes = minutes.count > 1 ? minutes.sorted { $0.start < $1.start } : minutes
            var slots: MinuteSlots?
            var changed = false
            var blind = false
            for (i, r) in minutes.enumerated() {
                let hour = r.start - r.start.modulo(3_600)
                if r.polls == 1, slots == nil {
                    // This hour's minutes of this batch are from here to the next hour's first.
                    blind =
                        freeAfter != SQLiteHistoryStore.unknownMinute && Self.minute(of: r.start) > Int64(freeAfter)
                    if blind {
                        slots = MinuteSlots()
                    } else {
                        let data = try Data.fetchOne(self.readSlots, arguments: [hour, urlID])
                        slots = data.flatMap { MinuteSlots(encoded: Array($0)) } ?? MinuteSlots()
                    }
                }
                if r.polls == 1, slots?.put(r, minute: Int(r.start - hour) / 60) == true {
                    changed = true
                } else {
                    try self.minute.execute(arguments: Self.arguments(urlID, r))
                }
                let last = i + 1 == minutes.count || minutes[i + 1].start - minutes[i + 1].start.modulo(3_600) != hour
                if last {
                    if changed, let slots {
                        try (blind ? self.mergeSlots : self.writeSlots).execute(arguments: [
                            hour, urlID, Data(slots.bytes),
                        ])
                    }
                    slots = nil
                    changed = false
                }
            }
            for r in days {
                try self.day.execute(arguments: [
                    urlID, r.start, r.polls, r.failures, r.degraded, r.latencySum, r.latencyMax,
                ])
            }
            return minutes.last.map { UInt32(clamping: Self.minute(of: $0.start)) }
        }

        /// Minutes since the epoch of the minute holding `second`.
        static func minute(of second: Int64) -> Int64 {
            (second - second.modulo(60)) / 60
        }
    }

    public func prune(before cutoff: (minutes: Double, hours: Double)) async throws(HistoryError) {
        let ids = self.rows.withLock { $0.values.map(\.id) }.sorted()
        let minutes = Int64(cutoff.minutes.rounded(.down))
        let hours = Int64(cutoff.hours.rounded(.down))
        // Said before the first delete, so no reader counts on a minute being gone already.
        self.minutesPruned.withLock { $0 = max($0 ?? minutes, minutes) }
        do {
            // The minute slots by hour (each hour a range at the front of the primary key), one hour per
            // transaction; an hour goes once all of its minutes are older than the cutoff. Only hours that
            // have rows are visited (after a long stop, the hours between are skipped).
            var hour = try await self.pool.read { db in
                try Int64.fetchOne(db, sql: "SELECT min(hour) FROM minute_slots")
            }
            while let gone = hour, gone + 3_600 <= minutes {
                hour = try await self.pool.write { db in
                    try db.execute(sql: "DELETE FROM minute_slots WHERE hour = ?", arguments: [gone])
                    return try Int64.fetchOne(
                        db, sql: "SELECT min(hour) FROM minute_slots WHERE hour > ?", arguments: [gone])
                }
            }
            // The rest by URL (each a range of the primary key), a few hundred URLs per transaction, so a
            // prune never holds the writer for long.
            var start = 0
            while start < ids.count {
                let chunk = Array(ids[start..<min(start + 500, ids.count)])
                start += chunk.count
                try await self.pool.write { db in
                    // Prepared once per connection: a prune visits every URL.
                    let deletes = try [
                        "DELETE FROM rollup_minute WHERE url_id = ? AND start < ?",
                        "DELETE FROM rollup_hour WHERE url_id = ? AND start < ?",
                        "DELETE FROM state_change WHERE url_id = ? AND at < ?",
                        "DELETE FROM rollup_day WHERE url_id = ? AND start < ?",
                    ].map { try db.cachedStatement(sql: $0) }
                    let day = hours - ((hours % 86_400) + 86_400) % 86_400
                    for id in chunk {
                        try deletes[0].execute(arguments: [id, minutes])
                        try deletes[1].execute(arguments: [id, hours])
                        try deletes[2].execute(arguments: [id, cutoff.hours])
                        try deletes[3].execute(arguments: [id, day])
                    }
                }
            }
        } catch {
            throw HistoryError("cannot prune \(self.path): \(Self.words(error))")
        }
    }

    // MARK: Reading

    public func summary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool) throws(HistoryError)
        -> HistorySummary
    {
        let table = byMinute ? "rollup_minute" : "rollup_hour"
        let width: Int64 = byMinute ? 60 : 3_600
        var first = Int64(start.rounded(.down)) - ((Int64(start.rounded(.down)) % width) + width) % width
        // By minute, the part of the window before the minutes kept (``minutesPruned``) is read from the
        // hour rows: from the hour holding `start` to the end of the hour holding the cutoff, then minutes.
        var hours: (from: Int64, to: Int64)?
        if byMinute, let pruned = self.minutesPruned.withLock({ $0 }), first < pruned {
            let end = pruned + (3_600 - pruned.modulo(3_600)) % 3_600
            hours = (first - first.modulo(3_600), end)
            first = end
        }
        let total0 = Rollup(start: hours?.from ?? first)
        do {
            return try self.pool.read { db in
                var total = total0
                guard
                    let id = try Int64.fetchOne(
                        db, sql: "SELECT id FROM url_state WHERE url = ? AND ordinal = ?",
                        arguments: [key.url, key.ordinal])
                else { return HistorySummary(rollup: total, changes: []) }
                if let hours {
                    let rows = try Row.fetchCursor(
                        db,
                        sql: "SELECT * FROM rollup_hour WHERE url_id = ? AND start >= ? AND start < ? AND start <= ?",
                        arguments: [id, hours.from, hours.to, end])
                    while let row = try rows.next() { total.merge(Self.rollup(row)) }
                }
                let rows = try Row.fetchCursor(
                    db, sql: "SELECT * FROM \(table) WHERE url_id = ? AND start >= ? AND start <= ?",
                    arguments: [id, first, end])
                while let row = try rows.next() { total.merge(Self.rollup(row)) }
                if byMinute, end >= Double(first) {
                    // The minutes of one poll, from the slots of each hour in the window.
                    let slots = try db.cachedStatement(
                        sql: "SELECT slots FROM minute_slots WHERE hour = ? AND url_id = ?")
                    var hour = first - first.modulo(3_600)
                    while Double(hour) <= end {
                        if let data = try Data.fetchOne(slots, arguments: [hour, id]),
                            let kept = MinuteSlots(encoded: Array(data))
                        {
                            for minute in 0..<MinuteSlots.count {
                                let start = hour + Int64(minute) * 60
                                guard start >= first, Double(start) <= end,
                                    let rollup = kept.rollup(minute: minute, start: start)
                                else { continue }
                                total.merge(rollup)
                            }
                        }
                        hour += 3_600
                    }
                }
                let changes = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT * FROM (SELECT * FROM state_change WHERE url_id = ? AND at >= ? AND at <= ?
                          ORDER BY at DESC LIMIT ?) ORDER BY at
                        """, arguments: [id, start, end, Self.changesLimit]
                ).map { Self.change($0, key: key) }
                return HistorySummary(rollup: total, changes: changes)
            }
        } catch {
            throw HistoryError("cannot read \(self.path): \(Self.words(error))")
        }
    }

    /// The file was deleted (with its folder, say) or replaced under the running urlpoll: SQLite goes on
    /// writing the file it has open, which nobody can open again, and which is gone when urlpoll stops.
    public func gone() -> String? {
        guard let identity = self.identity else { return nil }
        var info = stat()
        if stat(self.path, &info) != 0 {
            return "\(self.path) was deleted while urlpoll runs (\(String(cString: strerror(errno)).lowercased()))"
        }
        if UInt64(info.st_dev) != identity.device || UInt64(info.st_ino) != identity.inode {
            return "\(self.path) was replaced by another file while urlpoll runs"
        }
        return nil
    }

    /// The most changes ``summary(key:from:to:byMinute:)`` returns: the latest ones.
    public static let changesLimit = 100

    public func hourly(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] {
        do {
            return try self.pool.read { db in
                try Self.byURL(
                    db,
                    sql: """
                        SELECT u.id, u.url, u.ordinal, r.start, r.polls, r.failures, r.degraded, r.latency_sum_us,
                          r.latency_max_us, r.sketch
                        FROM url_state u CROSS JOIN rollup_hour r ON r.url_id = u.id
                        WHERE r.start >= ? ORDER BY u.id, r.start
                        """, since: Int64(start.rounded(.down))
                ) { row in
                    var rollup = Rollup(start: row[3])
                    rollup.polls = row[4]
                    rollup.failures = row[5]
                    rollup.degraded = row[6]
                    rollup.latencySum = Double(row[7] as Int64) / 1_000_000
                    rollup.latencyMax = Double(row[8] as Int64) / 1_000_000
                    if let data: Data = row[9], let sketch = LatencySketch(encoded: Array(data)) {
                        rollup.sketch = sketch
                    }
                    return rollup
                }
            }
        } catch {
            throw HistoryError("cannot read \(self.path): \(Self.words(error))")
        }
    }

    public func daily(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] {
        let whole = Int64(start.rounded(.down))
        let first = whole - ((whole % 86_400) + 86_400) % 86_400
        do {
            return try self.pool.read { db in
                try Self.byURL(
                    db,
                    sql: """
                        SELECT u.id, u.url, u.ordinal, r.start, r.polls, r.failures, r.degraded
                        FROM url_state u CROSS JOIN rollup_day r ON r.url_id = u.id
                        WHERE r.start >= ? ORDER BY u.id, r.start
                        """, since: first
                ) { row in
                    var rollup = Rollup(start: row[3])
                    rollup.polls = row[4]
                    rollup.failures = row[5]
                    rollup.degraded = row[6]
                    return rollup
                }
            }
        } catch {
            throw HistoryError("cannot read \(self.path): \(Self.words(error))")
        }
    }

    /// Every URL's rollups that `sql` selects (its columns: `u.id`, `u.url`, `u.ordinal`, then what `rollup`
    /// reads by index; its one argument `since`), keyed by URL.
    ///
    /// `sql` reads `url_state` first and each URL's rows through the primary key (`url_id`, `start`): a
    /// range of the key per URL. Joined the other way (SQLite's choice for `WHERE r.start >= ?`, which no
    /// index leads with), it scanned every row the table keeps, 30 days of hours to find the last 24; `CROSS
    /// JOIN` keeps the order as written (https://sqlite.org/optoverview.html#crossjoin). The rows come URL by
    /// URL, so each URL's key is read once and its list filled without a lookup per row.
    private static func byURL(
        _ db: Database, sql: String, since: Int64, _ rollup: (Row) throws -> Rollup
    ) throws -> [HistoryKey: [Rollup]] {
        var out: [HistoryKey: [Rollup]] = [:]
        var current: (id: Int64, key: HistoryKey, rollups: [Rollup])?
        let rows = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: [since])
        while let row = try rows.next() {
            let id: Int64 = row[0]
            if current?.id != id {
                if let done = current { out[done.key] = done.rollups }
                current = (id, HistoryKey(url: row[1], ordinal: row[2]), [])
            }
            current?.rollups.append(try rollup(row))
        }
        if let done = current { out[done.key] = done.rollups }
        return out
    }

    public func urlIDs() -> [HistoryKey: Int64] {
        self.rows.withLock { rows in Dictionary(uniqueKeysWithValues: zip(rows.keys, rows.values.lazy.map(\.id))) }
    }

    public func holds(_ key: HistoryKey) throws(HistoryError) -> Bool {
        self.rows.withLock { $0[key] != nil }
    }

    public func hourly(id: Int64, since start: Double) throws(HistoryError) -> [Rollup] {
        do {
            return try self.pool.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT * FROM rollup_hour WHERE url_id = ? AND start >= ? ORDER BY start",
                    arguments: [id, Int64(start.rounded(.down))]
                ).map(Self.rollup)
            }
        } catch {
            throw HistoryError("cannot read \(self.path): \(Self.words(error))")
        }
    }

    public func latestChanges(limit: Int) throws(HistoryError) -> [HistoryChange] {
        do {
            return try self.pool.read { db in
                // From the end of `state_change_by_time`: `limit` rows read, and the first results that were
                // up skipped, however long the log.
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT u.url, u.ordinal, c.* FROM state_change c JOIN url_state u ON u.id = c.url_id
                        WHERE NOT (c.from_state IS NULL AND c.to_state = 'up')
                        ORDER BY c.at DESC, c.id DESC LIMIT ?
                        """, arguments: [max(0, limit)]
                ).map { Self.change($0, key: Self.key($0)) }
            }
        } catch {
            throw HistoryError("cannot read \(self.path): \(Self.words(error))")
        }
    }

    private static func rollup(_ row: Row) -> Rollup {
        var rollup = Rollup(start: row["start"])
        rollup.polls = row["polls"]
        rollup.failures = row["failures"]
        rollup.degraded = row["degraded"]
        rollup.latencySum = Double(row["latency_sum_us"] as Int64) / 1_000_000
        rollup.latencyMax = Double(row["latency_max_us"] as Int64) / 1_000_000
        if let data: Data = row["sketch"], let sketch = LatencySketch(encoded: Array(data)) { rollup.sketch = sketch }
        return rollup
    }

    private static func key(_ row: Row) -> HistoryKey {
        HistoryKey(url: row["url"], ordinal: row["ordinal"])
    }

    private static func change(_ row: Row, key: HistoryKey) -> HistoryChange {
        HistoryChange(
            url: key.url, ordinal: key.ordinal, at: row["at"],
            from: (row["from_state"] as String?).flatMap(Health.init(rawValue:)),
            fromStatus: row["from_status"], to: Health(rawValue: row["to_state"] ?? "") ?? .down,
            toStatus: row["to_status"] ?? "", detail: row["detail"])
    }

    /// An error in words: SQLite's own message (`database or disk is full`), never GRDB's dump of the
    /// statement and its arguments; when SQLite says I/O error or full and the disk under `directory` has
    /// no room left, that the disk is full.
    static func words(_ error: any Error, directory: String? = nil) -> String {
        if let error = error as? DatabaseError {
            let message = error.message ?? "SQLite error \(error.resultCode.rawValue)"
            let code = error.resultCode.primaryResultCode
            if code == .SQLITE_IOERR || code == .SQLITE_FULL, let directory, let free = Self.freeBytes(directory),
                free < Self.fullBelow
            {
                return
                    "the disk is full (\(free) bytes free under \(directory); \(message), SQLite \(error.resultCode.rawValue))"
            }
            return message + " (SQLite \(error.resultCode.rawValue))"
        }
        return "\(error)"
    }

    /// Free bytes below which a disk counts as full: less than a few pages.
    static let fullBelow: UInt64 = 64 * 1024

    /// The bytes an unprivileged process may still write on the file system holding `directory`
    /// (statvfs(3)'s `f_bavail` × `f_frsize`), or nil when it cannot be told.
    static func freeBytes(_ directory: String) -> UInt64? {
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }

    /// The folder holding the file at `path`.
    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Whether the disk under `directory` has no room left (``fullBelow``).
    public static func diskIsFull(_ directory: String) -> Bool {
        (Self.freeBytes(directory) ?? .max) < Self.fullBelow
    }

    /// The saved states of the file in `directory` (see ``savedStates()``), read without writing anything,
    /// not even SQLite's `-wal` and `-shm` files (SQLite's `immutable` open,
    /// https://sqlite.org/uri.html#uriimmutable, when they are missing): for a disk too full to open the
    /// store. Empty when there is no file.
    public static func savedStates(readingOnly directory: String) throws(HistoryError) -> [State] {
        let path = directory.hasSuffix("/") ? directory + Self.fileName : directory + "/" + Self.fileName
        var info = stat()
        guard stat(path, &info) == 0, info.st_size > 0 else { return [] }
        var configuration = Configuration()
        configuration.readonly = true
        func read(_ location: String) throws -> [State] {
            let queue = try DatabaseQueue(path: location, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read { db in
                try Self.resumed(db)
            }
        }
        do {
            // Read-only, with the `-wal` and `-shm` a killed urlpoll left (the `-wal` may hold its last ticks);
            // without them, as immutable: SQLite would have to make them.
            return try read(path)
        } catch {
            do {
                return try read("file:\(path)?immutable=1")
            } catch {
                throw HistoryError("cannot read \(path): \(Self.words(error, directory: directory))")
            }
        }
    }
}
