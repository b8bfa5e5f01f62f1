import Engine
import Foundation
import GRDB
import Logging
import Synchronization
import Testing

/// The `--data` store on a real SQLite file in a temporary folder: what a tick writes, rollups, retention,
/// resuming, a newer schema, a full disk and a writer that falls behind. Wall-clock time comes from the
/// manual clock.
@Suite(.timeLimit(.minutes(1))) struct HistoryStoreTests {
    /// 2026-11-02 00:00:00 UTC: the manual clock's zero, in seconds since the epoch.
    static let base = 1_793_577_600.0
    static let (a, b) = ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")

    static func state(
        _ url: String, _ health: Health = .up, at: Double, latency: Double = 0.1, errors: Int = 0, since: Double? = nil
    ) -> State {
        State(
            url: url, name: url, status: health == .down ? "refused" : "200 OK", code: health == .down ? nil : 200,
            health: health, error: health == .down ? "refused" : nil,
            detail: health == .down ? "connection refused (ECONNREFUSED)" : nil, errorCount: errors,
            latency: .seconds(latency), since: since ?? at, checkedAt: at)
    }

    /// A store that counts its transactions, around a real SQLite store; its writes fail while `failing`
    /// (a disk that fills and is freed again).
    final class CountingStore: HistoryStore {
        let inner: SQLiteHistoryStore
        let writes = Mutex(0)
        let failing = Mutex(false)
        init(_ inner: SQLiteHistoryStore) { self.inner = inner }
        var generation: Int { self.inner.generation }
        func savedStates() throws(HistoryError) -> [State] { try self.inner.savedStates() }
        func write(_ batch: HistoryBatch) async throws(HistoryError) {
            self.writes.withLock { $0 += 1 }
            if self.failing.withLock({ $0 }) {
                throw HistoryError("cannot write to \(self.inner.path): the disk is full")
            }
            try await self.inner.write(batch)
        }
        func prune(before cutoff: (minutes: Double, hours: Double)) async throws(HistoryError) {
            try await self.inner.prune(before: cutoff)
        }
        func summary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool) throws(HistoryError)
            -> HistorySummary
        { try self.inner.summary(key: key, from: start, to: end, byMinute: byMinute) }
        func hourly(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] {
            try self.inner.hourly(since: start)
        }
        func daily(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] {
            try self.inner.daily(since: start)
        }
        func latestChanges(limit: Int) throws(HistoryError) -> [HistoryChange] {
            try self.inner.latestChanges(limit: limit)
        }
        func urlIDs() -> [HistoryKey: Int64] { self.inner.urlIDs() }
        /// The transactions that marked hooks as started, and the changes they marked (URL and `at`).
        let markWrites = Mutex(0)
        let marked = Mutex(Set<String>())
        func markHooksStarted(_ changes: [HistoryChange]) async throws(HistoryError) {
            self.markWrites.withLock { $0 += 1 }
            try await self.inner.markHooksStarted(changes)
            self.marked.withLock { marked in for c in changes { marked.insert("\(c.url) \(c.at)") } }
        }
        func persistedHash(of key: HistoryKey) -> Int? { self.inner.persistedHash(of: key) }
        func hourly(id: Int64, since start: Double) throws(HistoryError) -> [Rollup] {
            try self.inner.hourly(id: id, since: start)
        }
    }

    final class Folder: Sendable {
        let path = "/tmp/urlpoll-data-\(UUID().uuidString.prefix(8))"
        deinit { try? FileManager.default.removeItem(atPath: self.path) }
    }

    /// Runs `writer` for the length of `body`, then finishes it and waits for its last write.
    static func running<T>(_ writer: HistoryWriter, _ body: () async throws -> T) async rethrows -> T {
        async let done: Void = writer.run()
        let result = try await body()
        writer.finish()
        await done
        return result
    }

    static func rows(_ path: String, _ sql: String) throws -> Int {
        let queue = try DatabaseQueue(path: path)
        return try queue.read { db in try Int.fetchOne(db, sql: sql) ?? -1 }
    }

    @Test func tick_writesOneTransaction_changedStatesOnly_andTheChanges() async throws {
        // Given: a monitor whose observer is the history writer, on a real SQLite file.
        let folder = Folder()
        let store = CountingStore(try SQLiteHistoryStore(directory: folder.path))
        let clock = ManualClock()
        let now: @Sendable () -> Double = { Self.base + clock.now.offset.seconds }
        let writer = HistoryWriter(store: store, now: now, logger: Logger(label: "test"))
        let monitor = StateMonitor(urls: [Self.a, Self.b], reporter: NoReporter(), observers: [writer])

        try await Self.running(writer) {
            // When: 50 polls of two URLs (a goes down once) arrive between two ticks.
            for i in 0..<25 {
                let t = now() + Double(i)
                await monitor.update(Self.state(Self.a, i == 10 ? .down : .up, at: t, errors: i == 10 ? 1 : 0))
                await monitor.update(Self.state(Self.b, at: t, since: Self.base))
            }
            await monitor.tick()
            await writer.sync()

            // Then: one transaction wrote them: both URLs' states, a's two changes and the first results.
            #expect(store.writes.withLock { $0 } == 1)
            let saved = try store.savedStates()
            #expect(saved.map(\.url) == [Self.a, Self.b])
            #expect(saved.first?.health == .up)
            let path = store.inner.path
            #expect(try Self.rows(path, "SELECT count(*) FROM state_change") == 4)  // a: first, down, up; b: first
            #expect(try Self.rows(path, "SELECT sum(polls) FROM rollup_minute") == 50)
            #expect(try Self.rows(path, "SELECT sum(failures) FROM rollup_hour") == 1)

            // When: b is polled again unchanged, and a tick passes with nothing new.
            clock.advance(by: .seconds(60))
            await monitor.update(Self.state(Self.b, at: now(), since: Self.base))
            await monitor.tick()
            await monitor.tick()
            await writer.sync()
            // Then: the poll is counted in one more transaction, and b's unchanged row is not rewritten.
            #expect(store.writes.withLock { $0 } == 2)
            #expect(try Self.rows(path, "SELECT sum(polls) FROM rollup_minute") == 50)
            #expect(try Self.rows(path, "SELECT count(*) FROM minute_slots") == 1)  // b's one poll that minute
            #expect(
                try store.summary(key: HistoryKey(url: Self.b), from: Self.base, to: now(), byMinute: true).rollup.polls
                    == 26)
            #expect(try store.savedStates().first { $0.url == Self.b }?.checkedAt == Self.base + 24)
        }
    }

    @Test func manyNewURLs_inOneBatch_getTheirOwnRows_states_changesAndRollups() async throws {
        // Given: a batch of 610 URLs the file has not seen (more than two multi-row statements' worth, and a
        // rest of 98): 600 with a state and a first change (every 7th down), 10 with polls only; each
        // polled twice, a minute apart.
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let other = try SQLiteHistoryStore(directory: folder.path)
        let urls = (0..<610).map { "http://127.0.0.1:9/u\($0)" }
        func health(_ i: Int, round: Int) -> Health { (i + round) % 7 == 0 ? .down : .up }
        func batch(round: Int, states: Range<Int>, polled: Range<Int>) -> HistoryBatch {
            var batch = HistoryBatch()
            let at = Self.base + Double(round) * 120
            for i in polled {
                for minute in 0..<2 {
                    let s = Self.state(
                        urls[i], health(i, round: round), at: at + Double(minute) * 60 + Double(i % 60),
                        latency: Double(i + 1) / 1000, errors: health(i, round: round) == .down ? 1 : 0)
                    batch.count(s)
                    if states.contains(i), minute == 1 {
                        batch.states[s.historyKey] = s
                        batch.changes.append(HistoryChange(s, previous: nil))
                    }
                }
            }
            return batch
        }
        try await store.write(batch(round: 0, states: 0..<600, polled: 0..<610))

        // Then: one row per URL, each with its own state, change and rollups.
        let path = store.path
        #expect(try Self.rows(path, "SELECT count(*) FROM url_state") == 610)
        #expect(store.urlIDs().count == 610)
        #expect(Set(store.urlIDs().values).count == 610)
        func checkStates(round: Int, _ range: Range<Int>) throws {
            let saved = Dictionary(uniqueKeysWithValues: try store.savedStates().map { ($0.url, $0) })
            for i in range {
                let s = try #require(saved[urls[i]])
                #expect(s.health == health(i, round: round))
                #expect(s.errorCount == (health(i, round: round) == .down ? 1 : 0))
                #expect(s.checkedAt == Self.base + Double(round) * 120 + 60 + Double(i % 60))
                #expect(abs(s.latency.seconds - Double(i + 1) / 1000) < 1e-6)
            }
        }
        try checkStates(round: 0, 0..<600)
        #expect(try store.savedStates().count == 600)
        #expect(
            try Self.rows(
                path,
                "SELECT count(*) FROM state_change c JOIN url_state u ON u.id = c.url_id WHERE c.to_state = u.state")
                == 600)
        for i in [0, 1, 255, 256, 511, 512, 599, 600, 609] {
            let summary = try store.summary(
                key: HistoryKey(url: urls[i]), from: Self.base, to: Self.base + 3_600, byMinute: true)
            #expect(summary.rollup.polls == 2)
            #expect(summary.rollup.failures == (health(i, round: 0) == .down ? 2 : 0))
            #expect(summary.rollup.latencyMax == (health(i, round: 0) == .down ? 0 : Double(i + 1) / 1000))
            #expect(summary.changes.count == (i < 600 ? 1 : 0))
            let hour = try store.summary(
                key: HistoryKey(url: urls[i]), from: Self.base, to: Self.base + 3_600, byMinute: false)
            #expect(hour.rollup.polls == 2)
        }
        #expect(try Self.rows(path, "SELECT count(*) FROM minute_slots") == 610)
        #expect(try Self.rows(path, "SELECT sum(polls) FROM rollup_day") == 1_220)
        #expect(try Self.rows(path, "SELECT sum(polls) FROM rollup_hour") == 1_220)

        // When: the next batch changes every URL's state (the known ones updated), and a second store opened
        // on the same file before the first write, which knows none of its rows, writes a state of u0.
        try await store.write(batch(round: 1, states: 0..<610, polled: 0..<610))
        try checkStates(round: 1, 0..<610)
        var late = HistoryBatch()
        let s = Self.state(urls[0], .degraded, at: Self.base + 600)
        late.states[s.historyKey] = s
        late.count(s)
        try await other.write(late)

        // Then: still one row per URL; u0's row holds the second store's state; the polls add up.
        #expect(try Self.rows(path, "SELECT count(*) FROM url_state") == 610)
        #expect(try store.savedStates().first { $0.url == urls[0] }?.health == .degraded)
        #expect(try Self.rows(path, "SELECT sum(polls) FROM rollup_hour") == 2_441)
        #expect(try Self.rows(path, "SELECT count(*) FROM state_change") == 1_210)
    }

    @Test func rollups_countPollsPerMinuteAndHour_withTheLatencyP95() async throws {
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let writer = HistoryWriter(store: store, now: { Self.base }, logger: Logger(label: "test"))
        try await Self.running(writer) {
            // Given: 100 polls of a, one every 30 s (50 minutes), latencies 1…100 ms, every 10th one down.
            for i in 1...100 {
                let down = i % 10 == 0
                await writer.polled(
                    Self.state(
                        Self.a, down ? .down : .up, at: Self.base + Double(i - 1) * 30, latency: Double(i) / 1000),
                    previous: nil)
            }
            await writer.sync()

            // Then: over the whole window, by minute and by hour, the counts agree.
            for byMinute in [true, false] {
                let summary = try store.summary(
                    key: HistoryKey(url: Self.a), from: Self.base, to: Self.base + 3_600, byMinute: byMinute)
                #expect(summary.rollup.polls == 100)
                #expect(summary.rollup.failures == 10)
                #expect(summary.rollup.uptime == 0.9)
                // The p95 of the 90 latencies that were up (1…99 ms without the tens): 94 ms, within 2 %.
                let p95 = try #require(summary.rollup.sketch.quantile(0.95))
                #expect(abs(p95 - 0.094) <= 0.094 * 0.021)
                #expect(summary.rollup.latencyMax == 0.099)
            }
            // And: the last 10 minutes alone are the last 20 polls.
            let recent = try store.summary(
                key: HistoryKey(url: Self.a), from: Self.base + 2_400, to: Self.base + 3_000, byMinute: true)
            #expect(recent.rollup.polls == 20)
            #expect(try Self.rows(store.path, "SELECT count(*) FROM rollup_minute") == 50)
            #expect(try Self.rows(store.path, "SELECT count(*) FROM rollup_hour") == 1)
            // And: the day holds them all.
            let day = try #require(try store.daily(since: Self.base)[HistoryKey(url: Self.a)])
            #expect(day.map(\.polls) == [100])
            #expect(day.map(\.failures) == [10])
        }
    }

    @Test func retention_prunesMinutesAfterSevenDays_andHoursAfter400() async throws {
        // Given: rollups from 8 days and 401 days before the manual clock's now.
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let clock = ManualClock()
        let now: @Sendable () -> Double = { Self.base + clock.now.offset.seconds }
        var batch = HistoryBatch()
        batch.count(Self.state(Self.a, at: Self.base - 8 * 86_400))
        batch.count(Self.state(Self.a, at: Self.base - 401 * 86_400))
        batch.count(Self.state(Self.a, at: Self.base - 60))
        batch.changes.append(HistoryChange(Self.state(Self.a, at: Self.base - 401 * 86_400), previous: nil))
        try await store.write(batch)
        #expect(try Self.rows(store.path, "SELECT count(*) FROM minute_slots") == 3)

        // When: the writer ticks (it prunes on its first tick, then every 10 minutes).
        let writer = HistoryWriter(store: store, now: now, logger: Logger(label: "test"))
        await Self.running(writer) {
            await writer.polled(Self.state(Self.b, at: now()), previous: nil)
            await writer.sync()
        }
        // Then: minutes older than 7 days are gone, hours only older than 400 days, and the old change.
        #expect(try Self.rows(store.path, "SELECT count(*) FROM minute_slots WHERE url_id = 1") == 1)
        #expect(try Self.rows(store.path, "SELECT count(*) FROM rollup_hour WHERE url_id = 1") == 2)
        #expect(try Self.rows(store.path, "SELECT count(*) FROM rollup_day WHERE url_id = 1") == 2)
        #expect(try Self.rows(store.path, "SELECT count(*) FROM state_change") == 0)
    }

    @Test func windowByMinute_pastTheMinutesKept_countsTheOlderPartFromHours() async throws {
        // Given: a poll a minute from 2 to 10 hours after base, every tenth one down (480 polls, 48 down),
        // and minutes kept 1 hour (a prune at base + 12 h with `--minute-retention 0.0417`).
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        var batch = HistoryBatch()
        for i in 0..<480 {
            batch.count(Self.state(Self.a, i % 10 == 9 ? .down : .up, at: Self.base + 7_200 + Double(i) * 60))
        }
        try await store.write(batch)
        let now = Self.base + 12 * 3_600
        try await store.prune(before: (minutes: now - 3_600, hours: now - 400 * 86_400))
        #expect(try Self.rows(store.path, "SELECT count(*) FROM minute_slots") == 0)

        // When: windows of a day and of 3 hours are read by minute.
        let day = try store.summary(key: HistoryKey(url: Self.a), from: now - 86_400, to: now, byMinute: true)
        let three = try store.summary(key: HistoryKey(url: Self.a), from: now - 10_800, to: now, byMinute: true)

        // Then: the hours the minutes no longer hold are counted from the hour rows.
        #expect(day.rollup.polls == 480)
        #expect(day.rollup.failures == 48)
        #expect(three.rollup.polls == 60)
        #expect(three.rollup.failures == 6)
        // And: a window the minutes still hold is counted by minute alone.
        var recent = HistoryBatch()
        recent.count(Self.state(Self.a, at: now - 90))
        recent.count(Self.state(Self.a, at: now - 30))
        try await store.write(recent)
        let last = try store.summary(key: HistoryKey(url: Self.a), from: now - 60, to: now, byMinute: true)
        #expect(last.rollup.polls == 1)
    }

    @Test func restart_resumesTheLastTicksStates_withoutWritingUnchangedOnesAgain() async throws {
        let folder = Folder()
        do {
            let store = try SQLiteHistoryStore(directory: folder.path)
            let writer = HistoryWriter(store: store, now: { Self.base }, logger: Logger(label: "test"))
            await Self.running(writer) {
                await writer.polled(Self.state(Self.a, .down, at: Self.base, errors: 3), previous: nil)
                await writer.changed(Self.state(Self.a, .down, at: Self.base, errors: 3), previous: nil)
                await writer.sync()
            }
        }
        // When: the store is opened again, as after a restart.
        let store = try SQLiteHistoryStore(directory: folder.path)
        let saved = try store.savedStates()
        // Then: a's state and error count are back, as the monitor is seeded with them.
        #expect(saved.count == 1)
        #expect(saved.first?.health == .down)
        #expect(saved.first?.errorCount == 3)
        #expect(saved.first?.detail == "connection refused (ECONNREFUSED)")
        #expect(saved.first?.since == Self.base)
        let changes = try store.latestChanges(limit: 10)
        #expect(changes.map(\.key) == [HistoryKey(url: Self.a)])
    }

    /// The store keeps a hash of each URL's written state beside its row id (the writer keeps no map of
    /// its own), and reads them back when it is opened: after a restart an unchanged state is not written
    /// again, a changed one is, and so is one whose write failed.
    @Test func reopenedStore_tellsChangedStatesFromWrittenOnes() async throws {
        let folder = Folder()
        do {
            let store = try SQLiteHistoryStore(directory: folder.path)
            let writer = HistoryWriter(store: store, now: { Self.base }, logger: Logger(label: "test"))
            await Self.running(writer) {
                await writer.polled(Self.state(Self.a, .down, at: Self.base, errors: 1), previous: nil)
                await writer.polled(Self.state(Self.b, at: Self.base, since: Self.base), previous: nil)
                await writer.sync()
            }
        }
        // When: the store is opened again, and both URLs are polled: a as it was, b with a new error count.
        let store = try SQLiteHistoryStore(directory: folder.path)
        let made = Self.state(Self.a, .down, at: Self.base, errors: 1)
        #expect(store.persistedHash(of: HistoryKey(url: Self.a)) == made.persistedHash)
        let writer = HistoryWriter(store: store, now: { Self.base }, logger: Logger(label: "test"))
        await Self.running(writer) {
            await writer.polled(
                Self.state(Self.a, .down, at: Self.base + 60, errors: 1, since: Self.base), previous: nil)
            await writer.polled(Self.state(Self.b, .down, at: Self.base + 60, errors: 1), previous: nil)
            await writer.sync()
        }
        // Then: a's row is as the first run wrote it (checked_at not moved), b's is the new state.
        let saved = Dictionary(uniqueKeysWithValues: try store.savedStates().map { ($0.url, $0) })
        #expect(saved[Self.a]?.checkedAt == Self.base)
        #expect(saved[Self.b]?.checkedAt == Self.base + 60)
        #expect(saved[Self.b]?.errorCount == 1)
    }

    /// Two URLs that differ only by their password print alike; the writer keys their rows by the printed
    /// URL and their ordinal (``HistoryKey``), so each has its own state, changes and rollups, and each
    /// resumes its own state.
    @Test func urlsThatPrintAlike_keepTheirOwnRows_changesAndRollups() async throws {
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let shown = "http://probe:xxxxx@127.0.0.1:9/x"
        func state(_ ordinal: Int, _ health: Health, at: Double) -> State {
            var s = Self.state(shown, health, at: at, errors: health == .down ? 1 : 0, since: Self.base)
            s.rawURL = "http://probe:\(ordinal == 1 ? "A" : "B")@127.0.0.1:9/x"
            s.ordinal = ordinal
            s.name = ordinal == 1 ? shown : "\(shown) (2)"
            return s
        }
        let writer = HistoryWriter(store: store, now: { Self.base }, logger: Logger(label: "test"))
        let monitor = StateMonitor(
            urls: ["http://probe:A@127.0.0.1:9/x", "http://probe:B@127.0.0.1:9/x"], reporter: NoReporter(),
            observers: [writer])
        await Self.running(writer) {
            for i in 0..<10 {
                await monitor.update(state(1, .up, at: Self.base + Double(i)))
                await monitor.update(state(2, .down, at: Self.base + Double(i)))
            }
            await monitor.tick()
            await writer.sync()
        }
        let up = HistoryKey(url: shown, ordinal: 1)
        let down = HistoryKey(url: shown, ordinal: 2)
        let saved = try SQLiteHistoryStore(directory: folder.path).savedStates()
        #expect(saved.map(\.historyKey) == [up, down])
        #expect(saved.map(\.health) == [.up, .down])
        for (key, failures) in [(up, 0), (down, 10)] {
            let summary = try store.summary(key: key, from: Self.base, to: Self.base + 60, byMinute: true)
            #expect(summary.rollup.polls == 10)
            #expect(summary.rollup.failures == failures)
            #expect(summary.changes.count == 1)
        }
        let changes = try store.latestChanges(limit: 10)
        // The first URL's first result, up, is no incident: only the second's is among the latest changes.
        #expect(changes.map { "\($0.key.ordinal) \($0.to)" } == ["2 down"])
        #expect(try store.hourly(since: Self.base).mapValues { $0.map(\.failures) } == [up: [0], down: [10]])
    }

    /// A file the first schema (v1, keyed by the printed URL alone) wrote is brought to v3: its rows are
    /// kept, each as its URL's first (ordinal 1), with their changes and rollups, and its hours summed into
    /// days.
    @Test func v1File_isMigrated_keepingItsRowsAsOrdinalOne() async throws {
        let folder = Folder()
        try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        let path = folder.path + "/" + SQLiteHistoryStore.fileName
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1');
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
                    INSERT INTO url_state (id, url, name, status, state, error_count, since, checked_at)
                      VALUES (7, 'http://127.0.0.1:9/a', 'a', 'refused', 'down', 3, 1, 2);
                    INSERT INTO state_change (url_id, at, to_state, to_status) VALUES (7, 1, 'down', 'refused');
                    INSERT INTO rollup_hour VALUES (7, 1728000000, 60, 6, 1, 1.5, 0.2, x'');
                    INSERT INTO rollup_hour VALUES (7, 1728003600, 60, 0, 0, 1.0, 0.1, x'');
                    INSERT INTO rollup_hour VALUES (7, 1728086400, 30, 30, 0, 0, 0, x'');
                    """)
        }
        try queue.close()

        let store = try SQLiteHistoryStore(directory: folder.path)
        let saved = try store.savedStates()
        #expect(saved.map(\.historyKey) == [HistoryKey(url: Self.a)])
        #expect(saved.first?.errorCount == 3)
        #expect(try store.latestChanges(limit: 10).map(\.key) == [HistoryKey(url: Self.a)])
        #expect(try Self.rows(path, "SELECT count(*) FROM grdb_migrations") == 5)
        // v3: the day rollups are the hour rollups summed per UTC day.
        let days = try store.daily(since: 1_728_000_000)[HistoryKey(url: Self.a)] ?? []
        #expect(days.map(\.start) == [1_728_000_000, 1_728_086_400])
        #expect(days.map(\.polls) == [120, 30])
        #expect(days.map(\.failures) == [6, 30])
        #expect(days.map(\.degraded) == [1, 0])
    }

    /// Issue 14: at 10,000 URLs polled once a minute, v3 wrote 54.3 MB an hour (a `rollup_minute` row per
    /// poll, ~90 bytes with its share of the B-tree). Now a URL's minutes of one poll are one row of
    /// 60 fixed slots per hour, and this file of 200 URLs is under 1,000 bytes per URL-hour with every
    /// table's first pages (v3: over 2,500; the bench has the figures at 10,000 URLs), while
    /// every reader still sees each poll: by minute and by hour, the counts, the maximum and the p95.
    @Test func onePollAMinute_isOneRowPerURLHour_ofFixedSlots() async throws {
        // Given: 200 URLs, each polled once a minute for an hour, one batch per minute (as ticks write),
        // latencies from 1 to 60 ms, and the 10th minute of each URL down.
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let urls = (0..<200).map { "http://127.0.0.1:9/u/\($0)" }
        for minute in 0..<60 {
            var batch = HistoryBatch()
            for (i, url) in urls.enumerated() {
                let state = Self.state(
                    url, minute == 10 ? .down : .up, at: Self.base + Double(minute * 60 + i % 60),
                    latency: Double(minute + 1) / 1000)
                batch.count(state)
                if minute == 0 { batch.states[state.historyKey] = state }
            }
            try await store.write(batch)
        }

        // Then: no minute rows, one slots row per URL, and the file is small.
        #expect(try Self.rows(store.path, "SELECT count(*) FROM rollup_minute") == 0)
        #expect(try Self.rows(store.path, "SELECT count(*) FROM minute_slots") == 200)
        let used = try Self.rows(
            store.path,
            "SELECT (page_count - freelist_count) * page_size FROM pragma_page_count, pragma_freelist_count, pragma_page_size"
        )
        #expect(used < 200 * 1_000, "\(used) bytes for 200 URL-hours")
        // And: a reader sees the same by minute as by hour, for any URL.
        for byMinute in [true, false] {
            let summary = try store.summary(
                key: HistoryKey(url: urls[7]), from: Self.base, to: Self.base + 3_599, byMinute: byMinute)
            #expect(summary.rollup.polls == 60)
            #expect(summary.rollup.failures == 1)
            #expect(summary.rollup.latencyMax == 0.06)
            let p95 = try #require(summary.rollup.sketch.quantile(0.95))
            #expect(abs(p95 - 0.057) <= 0.057 * 0.021)
        }
        // And: a window of minutes counts only its minutes (20 to 29: 10 polls, none down).
        let window = try store.summary(
            key: HistoryKey(url: urls[7]), from: Self.base + 1_200, to: Self.base + 1_799, byMinute: true)
        #expect(window.rollup.polls == 10)
        #expect(window.rollup.failures == 0)
        #expect(window.rollup.latencyMax == 0.03)

        // When: a later batch brings a second poll of a minute already kept (a URL polled every 30 s, one
        // poll in each of two ticks), and a minute of two polls.
        var batch = HistoryBatch()
        batch.count(Self.state(urls[7], .degraded, at: Self.base + 30, latency: 0.5))
        batch.count(Self.state(urls[7], at: Self.base + 3_600, latency: 0.2))
        batch.count(Self.state(urls[7], at: Self.base + 3_630, latency: 0.3))
        try await store.write(batch)
        // Then: they are minute rows beside the slots, and readers add the two.
        #expect(try Self.rows(store.path, "SELECT count(*) FROM rollup_minute") == 2)
        let both = try store.summary(
            key: HistoryKey(url: urls[7]), from: Self.base, to: Self.base + 3_659, byMinute: true)
        #expect(both.rollup.polls == 63)
        #expect(both.rollup.degraded == 1)
        #expect(both.rollup.latencyMax == 0.5)
    }

    @Test func minutesMergedWithoutARead_stayExact_acrossTicks_andARestart() async throws {
        // Given: a URL polled every 30 s and one polled every 60 s, written tick by tick (every 10 s) for
        // 20 minutes, so that a minute's two polls fall in two ticks' batches.
        let folder = Folder()
        let (often, once) = ("http://127.0.0.1:9/often", "http://127.0.0.1:9/once")
        func write(_ store: SQLiteHistoryStore, ticks: Range<Int>) async throws {
            for tick in ticks {
                var batch = HistoryBatch()
                for second in tick * 10..<(tick + 1) * 10 {
                    if second % 30 == 5 { batch.count(Self.state(often, at: Self.base + Double(second))) }
                    if second % 60 == 7 {
                        batch.count(Self.state(once, second % 600 == 7 ? .down : .up, at: Self.base + Double(second)))
                    }
                }
                try await store.write(batch)
            }
        }
        do {
            let store = try SQLiteHistoryStore(directory: folder.path)
            try await write(store, ticks: 0..<61)  // 10 min 10 s: minute 10's first polls
        }
        // When: urlpoll restarts in the middle of minute 10, and goes on until minute 20.
        let store = try SQLiteHistoryStore(directory: folder.path)
        try await write(store, ticks: 61..<120)

        // Then: every poll is counted once, by minute as by hour: 40 and 20, 2 of them down.
        for byMinute in [true, false] {
            let a = try store.summary(
                key: HistoryKey(url: often), from: Self.base, to: Self.base + 1_199, byMinute: byMinute)
            #expect(a.rollup.polls == 40)
            let b = try store.summary(
                key: HistoryKey(url: once), from: Self.base, to: Self.base + 1_199, byMinute: byMinute)
            #expect(b.rollup.polls == 20)
            #expect(b.rollup.failures == 2)
        }
        // And: each minute of the URL polled every 60 s is a slot; each of the other's is a slot and a row.
        #expect(try Self.rows(store.path, "SELECT count(*) FROM rollup_minute") == 20)
        for minute in [3, 10, 15] {
            let one = try store.summary(
                key: HistoryKey(url: often), from: Self.base + Double(minute * 60),
                to: Self.base + Double(minute * 60 + 59), byMinute: true)
            #expect(one.rollup.polls == 2, "minute \(minute)")
        }
    }

    /// A file v3 wrote (a `rollup_minute` row per minute, latencies as REAL seconds) is brought to v4: its
    /// minutes of one poll move into slots, the others stay rows, and readers see the same counts.
    @Test func v3File_isMigrated_keepingEveryMinuteAndHour() async throws {
        let folder = Folder()
        try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        let path = folder.path + "/" + SQLiteHistoryStore.fileName
        let queue = try DatabaseQueue(path: path)
        let hour = Int64(Self.base)
        var sketches = (one: LatencySketch(), three: LatencySketch())
        sketches.one.add(seconds: 0.25)
        for seconds in [0.01, 0.02, 0.03] { sketches.three.add(seconds: seconds) }
        let (one, three) = sketches
        try await queue.write { db in
            // The v3 schema as v3 left it (frozen: never edit).
            try db.execute(
                sql: """
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1'), ('v2'), ('v3');
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
                    CREATE TABLE url_state (
                      id INTEGER PRIMARY KEY, url TEXT NOT NULL, ordinal INTEGER NOT NULL DEFAULT 1,
                      name TEXT NOT NULL, status TEXT, state TEXT, code INTEGER, error TEXT, detail TEXT,
                      error_count INTEGER NOT NULL DEFAULT 0, latency REAL NOT NULL DEFAULT 0,
                      polls INTEGER NOT NULL DEFAULT 0, since REAL, checked_at REAL, UNIQUE (url, ordinal));
                    CREATE TABLE rollup_day (
                      url_id INTEGER NOT NULL, start INTEGER NOT NULL, polls INTEGER NOT NULL,
                      failures INTEGER NOT NULL, degraded INTEGER NOT NULL, latency_sum REAL NOT NULL,
                      latency_max REAL NOT NULL, PRIMARY KEY (url_id, start)) WITHOUT ROWID;
                    INSERT INTO url_state (id, url, name, status, state, since, checked_at)
                      VALUES (7, 'http://127.0.0.1:9/a', 'a', '200 OK', 'up', 1, 2);
                    """)
            let minute = "INSERT INTO rollup_minute VALUES (7, ?, ?, ?, ?, ?, ?, ?)"
            try db.execute(sql: minute, arguments: [hour, 1, 0, 0, 0.25, 0.25, Data(one.encoded)])
            try db.execute(sql: minute, arguments: [hour + 60, 1, 1, 0, 0, 0, Data()])
            try db.execute(sql: minute, arguments: [hour + 120, 3, 0, 1, 0.06, 0.03, Data(three.encoded)])
            var merged = one
            merged.merge(three)
            try db.execute(
                sql: "INSERT INTO rollup_hour VALUES (7, ?, 5, 1, 1, 0.31, 0.25, ?)",
                arguments: [hour, Data(merged.encoded)])
        }
        try queue.close()

        // When: this urlpoll opens it.
        let store = try SQLiteHistoryStore(directory: folder.path)

        // Then: the minutes of one poll are slots, the other a row, and readers see all five polls.
        #expect(try Self.rows(path, "SELECT count(*) FROM grdb_migrations") == 5)
        #expect(try Self.rows(path, "SELECT count(*) FROM minute_slots") == 1)
        #expect(try Self.rows(path, "SELECT count(*) FROM rollup_minute") == 1)
        for byMinute in [true, false] {
            let summary = try store.summary(
                key: HistoryKey(url: Self.a), from: Self.base, to: Self.base + 3_599, byMinute: byMinute)
            #expect(summary.rollup.polls == 5)
            #expect(summary.rollup.failures == 1)
            #expect(summary.rollup.degraded == 1)
            #expect(abs(summary.rollup.latencySum - 0.31) < 1e-9)
            #expect(summary.rollup.latencyMax == 0.25)
            #expect(summary.rollup.sketch.count == 4)
        }
    }

    @Test func newerSchema_isRefusedInWords_andTheFileIsLeftAsItIs() async throws {
        // Given: a store whose file a newer urlpoll has migrated further.
        let folder = Folder()
        let path = try SQLiteHistoryStore(directory: folder.path).path
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v9')") }
        try queue.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        // When / Then: opening it is refused with what to do, and the file is unchanged, byte for byte
        // (issue 14, #6: its schema_version went up by 2 before the refusal).
        #expect {
            try SQLiteHistoryStore(directory: folder.path)
        } throws: { error in
            let text = "\(error)"
            return text.contains("written by a newer urlpoll") && text.contains("v9") && text.contains("--data")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(((try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data()).isEmpty)
        let reader = try DatabaseQueue(path: path)
        let migrations = try await reader.read { db in
            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
        }
        #expect(migrations == ["v1", "v2", "v3", "v4", "v5", "v9"])
        #expect(try Self.rows(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'") == 7)
    }

    /// Issue 14 (#6): every start bumped SQLite's schema_version by 2 (GRDB creates and drops a table when
    /// it opens a pool on a file without a `-wal`); opening an up-to-date file leaves its schema as it is.
    @Test func upToDateFile_isOpenedWithoutTouchingItsSchema() async throws {
        let folder = Folder()
        let path = try SQLiteHistoryStore(directory: folder.path).path
        let version = try Self.rows(path, "PRAGMA schema_version")
        for _ in 0..<2 {
            let store = try SQLiteHistoryStore(directory: folder.path)
            var batch = HistoryBatch()
            batch.count(Self.state(Self.a, at: Self.base))
            try await store.write(batch)
        }
        #expect(try Self.rows(path, "PRAGMA schema_version") == version)
    }

    @Test func notADatabase_isRefusedInWords() async throws {
        let folder = Folder()
        try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
        try "not sqlite at all, but long enough to be read as a header of one".write(
            toFile: folder.path + "/urlpoll.sqlite", atomically: true, encoding: .utf8)
        #expect {
            try SQLiteHistoryStore(directory: folder.path)
        } throws: { error in
            "\(error)".contains("file is not a database") && !"\(error)".contains("DatabaseError")
        }
    }

    /// A store whose writes wait until the test opens its gate: a disk that does not answer.
    final class GatedStore: HistoryStore {
        let inner: SQLiteHistoryStore
        private let gate = Mutex((open: false, waiting: [CheckedContinuation<Void, Never>]()))
        init(_ inner: SQLiteHistoryStore) { self.inner = inner }
        func open() {
            let waiting = self.gate.withLock { gate in
                gate.open = true
                defer { gate.waiting = [] }
                return gate.waiting
            }
            for continuation in waiting { continuation.resume() }
        }
        /// Closes the gate again: the writes to come wait.
        func close() { self.gate.withLock { $0.open = false } }
        var generation: Int { self.inner.generation }
        func savedStates() throws(HistoryError) -> [State] { try self.inner.savedStates() }
        func write(_ batch: HistoryBatch) async throws(HistoryError) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let open = self.gate.withLock { gate in
                    if !gate.open { gate.waiting.append(continuation) }
                    return gate.open
                }
                if open { continuation.resume() }
            }
            try await self.inner.write(batch)
        }
        func prune(before cutoff: (minutes: Double, hours: Double)) async throws(HistoryError) {}
        func markHooksStarted(_ changes: [HistoryChange]) async throws(HistoryError) {
            try await self.inner.markHooksStarted(changes)
        }
        func summary(key: HistoryKey, from start: Double, to end: Double, byMinute: Bool) throws(HistoryError)
            -> HistorySummary
        { try self.inner.summary(key: key, from: start, to: end, byMinute: byMinute) }
        func hourly(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] { [:] }
        func daily(since start: Double) throws(HistoryError) -> [HistoryKey: [Rollup]] { [:] }
        func latestChanges(limit: Int) throws(HistoryError) -> [HistoryChange] { [] }
        func urlIDs() -> [HistoryKey: Int64] { [:] }
        func hourly(id: Int64, since start: Double) throws(HistoryError) -> [Rollup] { [] }
    }

    /// A hook that records, as it runs, whether its change's state is already committed to the store (the
    /// store's record of what each URL's committed row holds).
    final class CommitCheckingHook: StateObserver {
        let store: any HistoryStore
        private let seen = Mutex([Bool]())
        private let marks = Mutex([Bool]())
        /// For each hook run, in order: whether its state was committed before it.
        var committedBefore: [Bool] { self.seen.withLock { $0 } }
        /// For each hook run, in order: whether its change was marked as hooked before it (a
        /// ``CountingStore`` only).
        var markedBefore: [Bool] { self.marks.withLock { $0 } }
        var count: Int { self.seen.withLock { $0.count } }
        init(_ store: any HistoryStore) { self.store = store }
        func changed(_ state: State, previous: State?) async {
            let committed = self.store.persistedHash(of: state.historyKey) == state.persistedHash
            let marked = (self.store as? CountingStore)?.marked.withLock {
                $0.contains("\(state.url) \(state.checkedAt)")
            }
            self.marks.withLock { $0.append(marked ?? false) }
            self.seen.withLock { $0.append(committed) }
        }
    }

    /// Runs `body` with the writer and the change queue running, then stops both.
    static func running<T>(
        _ writer: HistoryWriter, _ queue: ChangeQueue<ManualClock>, _ body: () async throws -> T
    ) async rethrows -> T {
        try await Self.running(writer) { () async throws in
            try await ChangeQueueTests.running(queue, body)
        }
    }

    /// Issue 14 (N3): the lines about lost history said "1 polls and changes of this tick are not
    /// recorded" and "(1 polls or changes were not recorded in all)".
    @Test func oneLostPoll_isSaidInTheSingular() async throws {
        let folder = Folder()
        let store = CountingStore(try SQLiteHistoryStore(directory: folder.path))
        let (logger, log) = RecordingLogHandler.make()
        let writer = HistoryWriter(store: store, now: { Self.base }, logger: logger)
        let monitor = StateMonitor(urls: [Self.a], reporter: NoReporter(), observers: [writer])
        await Self.running(writer) {
            // Given: a URL's first result written.
            store.failing.withLock { $0 = false }
            await monitor.update(Self.state(Self.a, at: Self.base))
            await monitor.tick()
            await writer.sync()
            // When: its next poll (no change) is lost on a full disk, and the next tick is written.
            store.failing.withLock { $0 = true }
            await monitor.update(Self.state(Self.a, at: Self.base + 1))
            await monitor.tick()
            await writer.sync()
            store.failing.withLock { $0 = false }
            await monitor.update(Self.state(Self.a, at: Self.base + 2))
            await monitor.tick()
            await writer.sync()
        }
        // Then: both lines say "1 poll or change", with a verb that agrees.
        let lines = log.all
        #expect(
            lines.contains {
                $0.hasSuffix(
                    "the disk is full: 1 poll or change of this tick is not recorded (counted in urlpoll_history_lost_total, as is what fails until a write works again); polling goes on, and writing is tried again on every tick"
                )
            },
            "\(lines)")
        #expect(
            lines.contains("notice: history is written again (1 poll or change was not recorded in all)"), "\(lines)")
    }

    /// Issue 14 (F6): a failed commit of the changes awaiting `on_change` (outside any tick) said "1 poll or
    /// change of this tick is not recorded": its line says what failed, changes awaiting their hooks.
    @Test func aFailedChangeCommit_saysItsChangesWereNotRecorded_notATicks() async throws {
        let folder = Folder()
        let store = CountingStore(try SQLiteHistoryStore(directory: folder.path))
        let (logger, log) = RecordingLogHandler.make()
        let writer = HistoryWriter(store: store, now: { Self.base }, logger: logger)
        let queue = ChangeQueue(clock: ManualClock(), logger: Logger(label: "test"))
        let hook = CommitCheckingHook(store)
        let monitor = StateMonitor(
            urls: [Self.a], reporter: NoReporter(), observers: [queue.observer(hook: hook, history: writer)])
        // Given: a disk that fails every write.
        store.failing.withLock { $0 = true }
        try await Self.running(writer, queue) { () async throws in
            // When: a change comes (no tick), and its commit fails.
            await monitor.update(Self.state(Self.a, .down, at: Self.base, errors: 1))
            #expect(await eventually { hook.count == 1 })
        }
        // Then: the line names the change awaiting its hook, not a tick's polls.
        let lines = log.all
        #expect(
            lines.contains {
                $0.hasSuffix(
                    "the disk is full: 1 change awaiting on_change (with its URL's state) is not recorded (counted in urlpoll_history_lost_total, as is what fails until a write works again); polling goes on, and writing is tried again on every tick"
                )
            },
            "\(lines)")
        #expect(!lines.contains { $0.contains("of this tick") }, "\(lines)")
    }

    /// Issue 14 (#1): with `on_change` in the script, a change and its URL's state are committed before its
    /// hook runs, not at the next tick, and a burst of changes heard together is a few transactions (group
    /// commit), not one per change.
    @Test func awaitingCommit_aChangeIsCommittedBeforeItsHook_andABurstIsAFewTransactions() async throws {
        let folder = Folder()
        let store = CountingStore(try SQLiteHistoryStore(directory: folder.path))
        let writer = HistoryWriter(store: store, now: { Self.base }, logger: Logger(label: "test"))
        // The commit limit never passes (the clock stands still): each hook waits for its commit.
        let queue = ChangeQueue(clock: ManualClock(), logger: Logger(label: "test"))
        let urls = (0..<10_000).map { "http://127.0.0.1:9/\($0)" }
        let hook = CommitCheckingHook(store)
        let monitor = StateMonitor(
            urls: urls, reporter: NoReporter(), observers: [queue.observer(hook: hook, history: writer)])
        try await Self.running(writer, queue) { () async throws in
            // When: one URL's first result arrives (no tick).
            await monitor.update(Self.state(urls[0], .down, at: Self.base, errors: 1))
            // Then: its change and state are in the file when the hook runs.
            #expect(await eventually { hook.count == 1 })
            #expect(hook.committedBefore == [true])
            #expect(try Self.rows(store.inner.path, "SELECT count(*) FROM state_change") == 1)

            // When: 10,000 changes arrive at once (every poller's), still without a tick.
            let writes = store.writes.withLock { $0 }
            await withDiscardingTaskGroup { group in
                for (i, url) in urls.enumerated() {
                    group.addTask { await monitor.update(Self.state(url, at: Self.base + 1 + Double(i) / 1e4)) }
                }
            }
            // Then: every one is committed before its hook, in a few transactions.
            #expect(await eventually(within: .seconds(20)) { hook.count == 10_001 }, "\(hook.count)")
            #expect(!hook.committedBefore.contains(false))
            #expect(try Self.rows(store.inner.path, "SELECT count(*) FROM state_change") == 10_001)
            #expect(store.writes.withLock { $0 } - writes <= 100, "\(store.writes.withLock { $0 } - writes)")
            // And (issue 14, N1): each change is marked as hooked before its hook, the marks of changes
            // starting together in one transaction (a few for the burst, as its commits), and none is left
            // to replay.
            #expect(!hook.markedBefore.contains(false))
            let marks = store.markWrites.withLock { $0 }
            #expect(marks <= 100, "\(marks) mark transactions")
            #expect(try Self.rows(store.inner.path, "SELECT count(*) FROM state_change WHERE hook_started = 0") == 0)
        }
    }

    /// A batch of the changes `states` (each from the one before, the first from nothing) of one URL, as
    /// the writer commits them for an `on_change` hook (``HistoryChange/hookPending``).
    static func hookedChanges(_ states: [State]) -> HistoryBatch {
        var batch = HistoryBatch()
        var previous: State?
        for state in states {
            var change = HistoryChange(state, previous: previous)
            change.hookPending = true
            batch.changes.append(change)
            batch.states[state.historyKey] = state
            previous = state
        }
        return batch
    }

    /// Issue 14 (N1): a change committed for its hook, and the process killed before the hook started, is
    /// taken back at the next start, once: its state as committed (`replayed` set) and its previous state;
    /// a change whose hook was marked as started is not.
    @Test func unstartedHooks_areTakenBackOnce_inOrder_withTheirStatesAsCommitted() async throws {
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let up = Self.state(Self.a, at: Self.base)
        let down = Self.state(Self.a, .down, at: Self.base + 10, errors: 1)
        let upAgain = Self.state(Self.a, at: Self.base + 20, since: Self.base + 20)
        let other = Self.state(Self.b, .down, at: Self.base + 15, errors: 1)
        var batch = Self.hookedChanges([up, down, upAgain])
        batch.changes += Self.hookedChanges([other]).changes
        batch.states[other.historyKey] = other
        try await store.write(batch)
        // Given: the first change's hook started (marked), the others' never did (a kill).
        try await store.markHooksStarted([HistoryChange(up, previous: nil)])
        #expect(try Self.rows(store.path, "SELECT count(*) FROM state_change WHERE hook_started = 0") == 3)

        // When: the store is opened again and the unstarted changes are taken.
        let reopened = try SQLiteHistoryStore(directory: folder.path)
        let taken = try reopened.takeUnstartedChanges(since: Self.base, limit: 1_000)

        // Then: the three, oldest first, as they were committed; the last one of A with its saved state.
        #expect(taken.skipped == 0)
        #expect(taken.changes.map(\.state.url) == [Self.a, Self.b, Self.a])
        #expect(taken.changes.map(\.state.status) == ["refused", "refused", "200 OK"])
        #expect(taken.changes.map(\.previous?.status) == ["200 OK", nil, "refused"])
        #expect(taken.changes.allSatisfy { $0.state.replayed })
        #expect(taken.changes[0].state.health == .down && taken.changes[0].state.since == Self.base + 10)
        #expect(taken.changes[0].previous?.health == .up)
        #expect(taken.changes[2].state.code == 200 && taken.changes[2].state.checkedAt == Self.base + 20)
        // And: they are marked as started: a second start replays nothing.
        #expect(try reopened.takeUnstartedChanges(since: Self.base, limit: 1_000).changes.isEmpty)
        #expect(try Self.rows(store.path, "SELECT count(*) FROM state_change WHERE hook_started = 0") == 0)
    }

    /// Issue 14 (N1): an old database does not flood the receivers: only the latest `limit` unstarted
    /// changes since the window's start are replayed; the others are counted, and marked all the same.
    @Test func unstartedHooks_pastTheWindowOrTheLimit_areSkipped_andCounted() async throws {
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let states = (0..<10).map { i in
            Self.state(Self.a, i % 2 == 0 ? .up : .down, at: Self.base + Double(i) * 3_600, errors: i % 2)
        }
        try await store.write(Self.hookedChanges(states))

        // When: the changes of the last 6 hours are asked for, at most 3.
        let taken = try store.takeUnstartedChanges(since: Self.base + 4 * 3_600, limit: 3)

        // Then: the latest 3, oldest first; the 7 others skipped, and none is left to replay.
        #expect(taken.changes.map(\.state.checkedAt) == [7, 8, 9].map { Self.base + Double($0) * 3_600 })
        #expect(taken.skipped == 7)
        #expect(try store.takeUnstartedChanges(since: 0, limit: 1_000).changes.isEmpty)
    }

    /// Issue 14 (N1): without `on_change` (changes written with the tick), no change waits for a hook, and
    /// no mark is written.
    @Test func withoutOnChange_noChangeIsLeftToReplay_andNoMarkIsWritten() async throws {
        let folder = Folder()
        let store = CountingStore(try SQLiteHistoryStore(directory: folder.path))
        let writer = HistoryWriter(store: store, now: { Self.base }, logger: Logger(label: "test"))
        let monitor = StateMonitor(urls: [Self.a], reporter: NoReporter(), observers: [writer])
        await Self.running(writer) {
            await monitor.update(Self.state(Self.a, at: Self.base))
            await monitor.update(Self.state(Self.a, .down, at: Self.base + 1, errors: 1))
            await monitor.tick()
            await writer.sync()
        }
        #expect(try Self.rows(store.inner.path, "SELECT count(*) FROM state_change") == 2)
        #expect(try Self.rows(store.inner.path, "SELECT count(*) FROM state_change WHERE hook_started = 0") == 0)
        #expect(store.markWrites.withLock { $0 } == 0)
    }

    /// Issue 14 (N1): a file v4 wrote (no `hook_started`) is migrated to v5; the changes it holds count as
    /// started, so the first start on it replays none of them.
    @Test func v4File_isMigrated_itsChangesCountAsStarted() async throws {
        let folder = Folder()
        let path: String
        do {
            let store = try SQLiteHistoryStore(directory: folder.path)
            path = store.path
            try await store.write(
                Self.hookedChanges([Self.state(Self.a, at: Self.base), Self.state(Self.a, .down, at: Self.base + 1)]))
        }
        // Given: the file as v4 left it: v5's column and index gone, v5 not applied.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(
                sql: """
                    DROP INDEX state_change_unhooked;
                    ALTER TABLE state_change DROP COLUMN hook_started;
                    DELETE FROM grdb_migrations WHERE identifier = 'v5';
                    """)
        }
        try queue.close()

        // When: this urlpoll opens it.
        let store = try SQLiteHistoryStore(directory: folder.path)

        // Then: it is at v5, its two changes are kept, and none is replayed.
        #expect(try Self.rows(path, "SELECT count(*) FROM grdb_migrations") == 5)
        #expect(try Self.rows(path, "SELECT count(*) FROM state_change WHERE hook_started = 1") == 2)
        let taken = try store.takeUnstartedChanges(since: 0, limit: 1_000)
        #expect(taken.changes.isEmpty && taken.skipped == 0)
    }

    /// Issue 14 (#1): a store that cannot write (a full disk) never holds a hook back: the change's failed
    /// commit lets it run at once, and the loss is counted as for polls.
    @Test func awaitingCommit_aFailedCommitLetsTheHookRun_andIsCounted() async throws {
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path, maxPageCount: 16)
        let (logger, log) = RecordingLogHandler.make()
        let writer = HistoryWriter(store: store, logger: logger)
        // The commit limit never passes: only the failed commits let the hooks run.
        let queue = ChangeQueue(clock: ManualClock(), logger: logger)
        let urls = (0..<400).map { "http://127.0.0.1:9/\($0)-" + String(repeating: "x", count: 100) }
        let recorder = ChangeRecorder()
        let monitor = StateMonitor(
            urls: urls, reporter: NoReporter(), observers: [queue.observer(hook: recorder, history: writer)])
        await Self.running(writer, queue) {
            for url in urls { await monitor.update(Self.state(url, .down, at: Self.base)) }
            #expect(await eventually { recorder.count == 400 })
            #expect(writer.lost > 0)
            #expect(log.all.filter { $0.hasPrefix("error:") && $0.contains("database or disk is full") }.count == 1)
        }
    }

    /// Issue 14 (#1): a commit that does not end (a disk that hangs) holds the hook back for the queue's
    /// ``ChangeQueue/commitLimit`` at most, on its clock.
    @Test func awaitingCommit_aHungCommitHoldsTheHookBackForTheLimitOnly() async throws {
        let folder = Folder()
        let store = GatedStore(try SQLiteHistoryStore(directory: folder.path))
        let clock = ManualClock()
        let writer = HistoryWriter(store: store, logger: Logger(label: "test"))
        let queue = ChangeQueue(commitLimit: .seconds(1), clock: clock, logger: Logger(label: "test"))
        let recorder = ChangeRecorder()
        let monitor = StateMonitor(
            urls: [Self.a], reporter: NoReporter(), observers: [queue.observer(hook: recorder, history: writer)])
        try await Self.running(writer, queue) { () async throws in
            await monitor.update(Self.state(Self.a, .down, at: Self.base))
            // Given: the change waits for its commit, with a limit of 1 s.
            var sleeps = clock.sleeps.makeAsyncIterator()
            #expect(await sleeps.next() == .seconds(1))
            #expect(recorder.count == 0)
            // When: the second passes.
            clock.advance(by: .seconds(1))
            // Then: the hook ran though nothing is committed yet; it is once the disk answers.
            #expect(await eventually { recorder.count == 1 })
            #expect(try store.savedStates().isEmpty)
            store.open()
            await writer.sync()
            #expect(try store.savedStates().count == 1)
            // And (issue 14, N1): its hook ran, so it is written as hooked: a restart does not run it again.
            #expect(
                try Self.rows(store.inner.path, "SELECT count(*) FROM state_change WHERE hook_started = 0") == 0)
            #expect(try Self.rows(store.inner.path, "SELECT count(*) FROM state_change") == 1)
        }
    }

    /// A new user's fault: while another process held the store's lock, every change held its poller for the
    /// whole limit, so polling fell to one poll per poller a second and alerts came late or never. (Polls no
    /// longer wait at all, ChangeQueueTests; hooks still must not wait a limit each.)
    @Test func awaitingCommit_afterOneWaitOutlastsTheLimit_changesNoLongerWait_untilACommitReturns() async throws {
        let folder = Folder()
        let store = GatedStore(try SQLiteHistoryStore(directory: folder.path))
        let clock = ManualClock()
        let writer = HistoryWriter(store: store, logger: Logger(label: "test"))
        let queue = ChangeQueue(commitLimit: .seconds(1), clock: clock, logger: Logger(label: "test"))
        let recorder = ChangeRecorder()
        let monitor = StateMonitor(
            urls: [Self.a, Self.b], reporter: NoReporter(),
            observers: [queue.observer(hook: recorder, history: writer)])
        try await Self.running(writer, queue) { () async throws in
            // Given: a change whose commit hangs past the limit.
            await monitor.update(Self.state(Self.a, .down, at: Self.base))
            var sleeps = clock.sleeps.makeAsyncIterator()
            #expect(await sleeps.next() == .seconds(1))
            clock.advance(by: .seconds(1))
            #expect(await eventually { recorder.count == 1 })
            // When: another change comes while the store still hangs.
            // Then: it does not wait (its hook runs with no time passing).
            await monitor.update(Self.state(Self.b, .down, at: Self.base + 1))
            let atOnce = await eventually(within: .seconds(2)) { recorder.count == 2 }
            #expect(atOnce, "the change waited for its commit although the store hangs")
            if !atOnce { clock.advance(by: .seconds(1)) }
            // And once a commit returns, changes wait for theirs again.
            store.open()
            await writer.sync()
            #expect(try store.savedStates().count == 2)
            store.close()
            await monitor.update(Self.state(Self.a, .up, at: Self.base + 2))
            #expect(await sleeps.next() == .seconds(1))
            #expect(recorder.count == 2)
            clock.advance(by: .seconds(1))
            #expect(await eventually { recorder.count == 3 })
            store.open()
        }
    }

    @Test func fullDisk_isLoggedOnce_counted_andTheMonitorGoesOn() async throws {
        // Given: a store whose file may not grow past a few pages, as on a full disk (SQLITE_FULL).
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path, maxPageCount: 16)
        let (logger, log) = RecordingLogHandler.make()
        let lost = Mutex(0)
        let writer = HistoryWriter(store: store, onLoss: { n in lost.withLock { $0 += n } }, logger: logger)
        let urls = (0..<400).map { "http://127.0.0.1:9/\($0)-" + String(repeating: "x", count: 100) }
        let monitor = StateMonitor(urls: urls, reporter: NoReporter(), observers: [writer])
        await Self.running(writer) {
            // When: two ticks' polls of 400 URLs do not fit.
            for round in 0..<2 {
                for url in urls { await monitor.update(Self.state(url, at: Self.base + Double(round))) }
                await monitor.tick()
                await writer.sync()
            }
            // Then: one error line says why and what is lost, the loss is counted, and the monitor still
            // takes polls.
            let errors = log.all.filter { $0.hasPrefix("error:") }
            #expect(errors.count == 1)
            #expect(errors.first?.contains("database or disk is full") == true)
            #expect(errors.first?.contains("polling goes on") == true)
            #expect(lost.withLock { $0 } >= 800)
            #expect(writer.lost == lost.withLock { $0 })
            await monitor.update(Self.state(urls[0], .down, at: Self.base + 2))
            #expect(await monitor.snapshot().first { $0.url == urls[0] }?.health == .down)
        }
    }

    /// Mounts a 2 MiB tmpfs (the brief's full-disk size, smaller than SQLite's WAL auto-checkpoint of
    /// 1,000 pages) under `folder`, for the length of `body`.
    static func onSmallDisk(_ folder: Folder, _ body: (String) async throws -> Void) async throws {
        let disk = folder.path + "/disk"
        let mounted = try await runShell(
            "mkdir -p \"$0\" && mount -t tmpfs -o size=2m tmpfs \"$0\"", [disk], limit: .seconds(10))
        try #require(mounted?.status == 0, "\(mounted?.stderr ?? "mount hung")")
        defer { _ = try? Process.run(URL(fileURLWithPath: "/bin/umount"), arguments: ["-l", disk]).waitUntilExit() }
        try await body(disk)
    }

    /// A tick's batch: every one of `urls` with a new state (up on even ticks, down on odd ones) whose
    /// detail is `detail` bytes, and, with `changes`, its change.
    static func flapping(_ urls: [String], tick: Int, detail: Int, changes: Bool) -> HistoryBatch {
        var batch = HistoryBatch()
        for url in urls {
            var s = Self.state(url, tick % 2 == 0 ? .up : .down, at: Self.base + Double(tick))
            s.detail = String(repeating: "d", count: detail)
            batch.count(s)
            batch.states[s.historyKey] = s
            if changes { batch.changes.append(HistoryChange(s, previous: nil)) }
        }
        return batch
    }

    /// Issue 14 (N2): on a disk smaller than SQLite's WAL auto-checkpoint (1,000 pages, about 4 MB), the
    /// `-wal` kept the space failed commits took (a failed transaction's pages stay in it), so once space
    /// was freed it went to the `-wal` again and the store never wrote again. After a failed commit the
    /// `-wal` is now checkpointed and truncated, before the next write if it could not be then.
    @Test(.enabled(if: getuid() == 0, "mounts a 2 MiB tmpfs, which needs root"))
    func fullSmallDisk_freedSpace_letsWritingResume() async throws {
        let folder = Folder()
        try await Self.onSmallDisk(folder) { disk in
            let store = try SQLiteHistoryStore(directory: disk + "/d")
            let urls = (0..<50).map { "http://127.0.0.1:9/flap/m\($0)" }
            // Given: a few ticks written, then the rest of the disk filled.
            for tick in 0..<3 {
                try await store.write(Self.flapping(urls, tick: tick, detail: 500, changes: true))
            }
            _ = try await runShell("dd if=/dev/zero of=\"$0\" bs=16k", [disk + "/fill"], limit: .seconds(10))
            #expect(SQLiteHistoryStore.diskIsFull(disk))
            // When: ticks fail on the full disk, and then the filler is removed.
            var failed = 0
            for tick in 3..<13 {
                do { try await store.write(Self.flapping(urls, tick: tick, detail: 500, changes: true)) } catch {
                    failed += 1
                }
            }
            #expect(failed == 10)
            try FileManager.default.removeItem(atPath: disk + "/fill")
            // Then: writing resumes at once, and goes on past what the freed space holds as `-wal`.
            for tick in 13..<63 {
                try await store.write(Self.flapping(urls, tick: tick, detail: 500, changes: true))
            }
            #expect(try Self.rows(store.path, "SELECT count(*) FROM state_change") == 50 * 53)
        }
    }

    /// Issue 14 (N2), the same kind: on that small disk the store's own `-wal` filled it (a `-wal` of 2 MiB
    /// is never checkpointed by SQLite), and no space could be freed for the checkpoint. The `-wal` is now
    /// checkpointed once it outgrows the space left, while the file can still grow.
    @Test(.enabled(if: getuid() == 0, "mounts a 2 MiB tmpfs, which needs root"))
    func smallDisk_isNotFilledByTheStoresOwnWAL() async throws {
        let folder = Folder()
        try await Self.onSmallDisk(folder) { disk in
            let store = try SQLiteHistoryStore(directory: disk + "/d")
            let urls = (0..<200).map { "http://127.0.0.1:9/flap/m\($0)" }
            // When: 40 ticks rewrite 200 URLs' states (about 150 KB each: 6 MB of `-wal` unless checkpointed).
            for tick in 0..<40 {
                try await store.write(Self.flapping(urls, tick: tick, detail: 500, changes: false))
            }
            // Then: every tick was written.
            #expect(try Self.rows(store.path, "SELECT count(*) FROM url_state WHERE state = 'down'") == 200)
        }
    }

    /// Issue 14: deleting the data folder under a running urlpoll went unnoticed (SQLite writes on into the
    /// deleted file). The writer now says so once, in words, and the monitor goes on.
    @Test func dataFolderDeleted_isLoggedOnceInWords_andPollingGoesOn() async throws {
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let (logger, log) = RecordingLogHandler.make()
        let writer = HistoryWriter(store: store, now: { Self.base }, logger: logger)
        let monitor = StateMonitor(urls: [Self.a], reporter: NoReporter(), observers: [writer])
        await Self.running(writer) {
            await monitor.update(Self.state(Self.a, at: Self.base))
            await monitor.tick()
            await writer.sync()
            #expect(log.all.filter { $0.hasPrefix("error:") }.isEmpty)

            // When: the folder is deleted, and two ticks pass.
            try? FileManager.default.removeItem(atPath: folder.path)
            for i in 1...2 {
                await monitor.update(Self.state(Self.a, at: Self.base + Double(i)))
                await monitor.tick()
                await writer.sync()
            }

            // Then: one error line says what happened and what to do; the monitor still takes polls.
            let errors = log.all.filter { $0.hasPrefix("error:") && $0.contains("was deleted") }
            #expect(errors.count == 1)
            #expect(errors.first?.contains("\(store.path) was deleted while urlpoll runs") == true)
            #expect(errors.first?.contains("polling goes on") == true)
            await monitor.update(Self.state(Self.a, .down, at: Self.base + 3))
            #expect(await monitor.snapshot().first?.health == .down)
        }
    }

    @Test func fullQueue_dropsAreCounted_andLoggedOnceAtTheTick() async throws {
        // Given: a writer whose queue holds 10 messages, not yet running.
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let (logger, log) = RecordingLogHandler.make()
        let writer = HistoryWriter(store: store, capacity: 10, now: { Self.base }, logger: logger)
        // When: 25 polls arrive before it gathers any (each returns at once).
        for i in 0..<25 { await writer.polled(Self.state(Self.a, at: Self.base + Double(i)), previous: nil) }
        #expect(writer.lost == 15)
        await Self.running(writer) {
            await writer.ticked()
            await writer.sync()
        }
        // Then: the 10 it kept are written, and one line says 15 were not.
        #expect(
            try store.summary(key: HistoryKey(url: Self.a), from: Self.base, to: Self.base + 60, byMinute: true).rollup
                .polls == 10)
        let lines = log.all.filter { $0.contains("history falls behind") }
        #expect(lines.count == 1)
        #expect(lines.first?.contains("15 polls or changes were not recorded") == true)
    }

    /// Issue 14: the page's "Latest changes" merged each URL's latest 10, so a URL that changed 30 times
    /// in the last hour showed only 10 of them while older changes of quiet URLs filled the rest. The store
    /// now answers the latest changes of all URLs together.
    @Test func latestChanges_areTheNewestOfAllURLs_newestFirst() async throws {
        // Given: b changes 30 times after a's 5 changes, and a third URL changed long before.
        let folder = Folder()
        let store = try SQLiteHistoryStore(directory: folder.path)
        let c = "http://127.0.0.1:9/c"
        var batch = HistoryBatch()
        batch.changes.append(HistoryChange(Self.state(c, .down, at: Self.base - 86_400), previous: nil))
        for (url, count, from) in [(Self.a, 5, Self.base), (Self.b, 30, Self.base + 100)] {
            // Each URL's first result, up, comes first and is no incident; then it goes down and up in turn.
            var previous = Self.state(url, at: from - 1)
            batch.changes.append(HistoryChange(previous, previous: nil))
            for i in 0..<count {
                let state = Self.state(url, i % 2 == 0 ? .down : .up, at: from + Double(i))
                batch.changes.append(HistoryChange(state, previous: previous))
                previous = state
            }
        }
        try await store.write(batch)

        // When / Then: the latest 32 are b's 30 and a's last 2, newest first.
        let latest = try store.latestChanges(limit: 32)
        #expect(latest.count == 32)
        #expect(latest.map(\.at) == latest.map(\.at).sorted(by: >))
        #expect(latest.prefix(30).allSatisfy { $0.url == Self.b })
        #expect(latest.suffix(2).map(\.url) == [Self.a, Self.a])
        #expect(latest.first?.at == Self.base + 129)
        // And: a limit past the log's length gives all of it, the oldest last, without the first results
        // that were up (a's and b's at base − 1 and base + 99): 1 + 5 + 30 changes.
        let all = try store.latestChanges(limit: 50)
        #expect(all.count == 36)
        #expect(all.last?.url == c)
        #expect(!all.contains { $0.from == nil && $0.to == .up })
    }

    @Test func sketch_encodesAndMerges() {
        var a = LatencySketch()
        var b = LatencySketch()
        for i in 1...50 { a.add(seconds: Double(i) / 1000) }
        for i in 51...100 { b.add(seconds: Double(i) / 1000) }
        a.merge(try! #require(LatencySketch(encoded: b.encoded)))
        #expect(a.count == 100)
        let p95 = a.quantile(0.95) ?? 0
        #expect(abs(p95 - 0.095) <= 0.095 * 0.021)
        #expect(LatencySketch(encoded: [0xFF]) == nil)
    }
}

/// A reporter that prints nothing.
struct NoReporter: Reporter {
    func report(_ states: [State]) async {}
}
