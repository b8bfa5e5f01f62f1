// urlpoll-bench: the in-process side of the benchmark, in a release build. Prints one JSON object:
// backoff_us (per call of a Lua backoff hook), report_tick_ms (a report hook over 10,000 URL states),
// load_100k_s (loading a script that builds 100,000 URLs), load_100k_tables_s (loading a script that lists
// 100,000 table entries, one per line), and client_probes_s / client_probes_2_s: the HTTP
// prober alone, 16 or 2 tasks probing 127.0.0.1:18480 for 5 s with no engine around it (the ceiling the engine
// works under), and the /metrics writer alone over 100,000 URLs' states: scrape_100k_ms (the default set),
// scrape_100k_full_ms (`metrics = "full"`, every URL an HTTPS poll with timings and TLS facts) and
// scrape_100k_gzip_ms / scrape_100k_gzip_mb (the default set gzipped, as Prometheus asks for it).
// `--client-only` measures just the prober. history_first_tick_ms / history_tick_ms: the --data
// store writing one tick's batch of 100,000 URLs' polls (the first: new rows and changes; then a steady
// minute: rollup upserts only), and history_db_mb_1h: the file after an hour of such minutes.
// `--history-only` measures just the store. `--status-only [--urls N] [--days D]`: status_make_ms, one
// /status document made from a store of N URLs with D days of hour rollups (what each request cost before
// /status was cached; now once per tick), and status_mb, its size.
// report_tick_new_ms: the report tick when every state is new since
// the last tick (HTTP polls with timings); `--report-only` measures just the two report ticks.
import Engine
import FoundationEssentials
import Logging
import Synchronization

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    return (ContinuousClock.now - start).seconds
}

func script(_ text: String) throws -> String {
    let path = "/tmp/urlpoll-bench-\(UInt32.random(in: 0...UInt32.max)).lua"
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
}

/// Runs the measurements off the main actor: hooks are called from plain tasks, as the engine calls them.
@Sendable func measure() async throws -> String {
    var logger = Logger(label: "bench")
    logger.logLevel = .critical

    // backoff: the seed's formula written in Lua, one call per poll.
    let backoffPath = try script(
        """
        urls = { "http://127.0.0.1:18480/" }
        function backoff(r) return r.interval + 10 * r.error_count end
        """)
    let backoffHost = try ScriptHost(path: backoffPath, logger: logger)
    var resource = Resource(backoffHost.config.targets[0])
    resource.record(.status(500), at: 0)
    let calls = 1_000_000
    var best = Double.infinity
    for _ in 0..<3 {
        let elapsed = await seconds {
            for _ in 0..<calls { _ = await backoffHost.delay(for: resource, settings: Settings()) }
        }
        best = min(best, elapsed)
    }
    let backoffMicros = best / Double(calls) * 1e6

    let (bestTick, bestNewTick) = try await reportTicks(logger: logger)

    // load: a script that builds 100,000 URLs in a loop.
    let loadPath = try script(
        """
        urls = {}
        for i = 1, 100000 do urls[i] = "http://127.0.0.1:18480/u/" .. i end
        """)
    var bestLoad = Double.infinity
    for _ in 0..<3 {
        bestLoad = min(bestLoad, try await seconds { _ = try ScriptHost(path: loadPath, logger: logger) })
    }

    // load: 100,000 table-form entries written out in the file, one per line (each entry's options are
    // checked, and an error would name its line).
    var entries = "urls = {\n"
    for i in 1...100_000 {
        entries += "  { url = \"http://127.0.0.1:18480/t/\(i)\", name = \"t\(i)\", timeout = 5 },\n"
    }
    entries += "}\n"
    let tablesPath = try script(entries)
    var bestTables = Double.infinity
    for _ in 0..<3 {
        bestTables = min(bestTables, try await seconds { _ = try ScriptHost(path: tablesPath, logger: logger) })
    }
    for path in [backoffPath, loadPath, tablesPath] { try? FileManager.default.removeItem(atPath: path) }

    // /metrics: the per-URL families of 100,000 HTTPS URLs, rendered from the monitor's states.
    let scrape = try scrapeMilliseconds(urls: 100_000)

    let probes = CommandLine.arguments.contains("--no-client") ? 0 : await clientProbesPerSecond(tasks: 16)
    let probes2 = CommandLine.arguments.contains("--no-client") ? 0 : await clientProbesPerSecond(tasks: 2)
    let history = try await historyFigures()
    return
        #"{"backoff_us": \#(backoffMicros), "report_tick_ms": \#(bestTick * 1000), "report_tick_new_ms": \#(bestNewTick * 1000), "load_100k_s": \#(bestLoad), "load_100k_tables_s": \#(bestTables), "client_probes_s": \#(probes), "client_probes_2_s": \#(probes2), "scrape_100k_ms": \#(scrape.plain), "scrape_100k_full_ms": \#(scrape.full), "scrape_100k_gzip_ms": \#(scrape.gzip), "scrape_100k_gzip_mb": \#(scrape.gzipMB), \#(history)}"#
}

/// A `report` hook that keeps a count and the worst latency, over 10,000 URLs' states: the best of `runs`
/// ticks, in seconds, reporting the same states each tick (`same`), and reporting states that are all new
/// each tick (`new`: every URL polled since the last tick, HTTP polls with phase timings and facts).
func reportTicks(logger: Logger, runs: Int = 5) async throws -> (same: Double, new: Double) {
    let reportPath = try script(
        """
        urls = { "http://127.0.0.1:18480/" }
        local worst, down = 0, 0
        function report(s)
          if s.index == 1 then worst, down = 0, 0 end
          if s.latency > worst then worst = s.latency end
          if not s.ok then down = down + 1 end
        end
        """)
    defer { try? FileManager.default.removeItem(atPath: reportPath) }
    // Each URL's texts made once, as a Resource's States share its Target's.
    let urls = (0..<10_000).map { ("http://127.0.0.1:18480/u/\($0)", "u\($0)") }
    func states(poll: Int) -> [State] {
        urls.enumerated().map { i, texts in
            State(
                url: texts.0, name: texts.1, status: "200 OK", code: 200, health: .up,
                latency: .microseconds(i + poll), polls: 3 + poll, since: 1, checkedAt: 2 + Double(poll))
        }
    }
    let reportHost = try ScriptHost(path: reportPath, logger: logger)
    let same = states(poll: 0)
    var bestSame = Double.infinity
    for _ in 0..<runs {
        bestSame = min(bestSame, await seconds { await reportHost.report(same) })
    }
    let newHost = try ScriptHost(path: reportPath, logger: logger)
    var bestNew = Double.infinity
    var ticks: [[State]] = []
    for poll in 0...runs {
        var tick = states(poll: poll)
        for i in tick.indices {
            tick[i].timings = PhaseTimings(processing: .microseconds(100 + i + poll), transfer: .microseconds(5))
            tick[i].http = HTTPFacts(contentLength: 0, bodyLength: 0, ssl: false, ipProtocol: 4)
        }
        ticks.append(tick)
    }
    await newHost.report(ticks[0])
    for tick in ticks.dropFirst() {
        bestNew = min(bestNew, await seconds { await newHost.report(tick) })
    }
    return (bestSame, bestNew)
}

/// The /metrics writer over `urls` HTTPS URLs' states (labelled `team`, with timings, HTTP and TLS facts):
/// the best of 3 renders of the default set, of the full set, and of the default set gzipped, in ms.
func scrapeMilliseconds(urls: Int) throws -> (plain: Double, full: Double, gzip: Double, gzipMB: Double) {
    var targets: [Target] = []
    var states: [String: State] = [:]
    for i in 0..<urls {
        var target = Target(url: "https://127.0.0.1:18480/u/\(i)", name: "u\(i)")
        target.labels = [MetricLabel("team", "t\(i % 50)")]
        var state = State(
            url: target.url, name: target.name, status: "200 OK", code: 200, health: .up,
            latency: .microseconds(1_000 + i), polls: 3, since: 1, checkedAt: 2)
        state.timings = PhaseTimings(connect: .microseconds(120), tls: .microseconds(900), processing: .microseconds(i))
        state.http = HTTPFacts(contentLength: 120, bodyLength: 120, ssl: true, ipProtocol: 4)
        state.tls = TLSFacts(
            version: "TLSv1.3", subject: "CN=localhost", issuer: "CN=CA", sans: ["localhost"], notBefore: 1.7e9,
            notAfter: 1.8e9, chainNotAfter: 1.8e9)
        targets.append(target)
        states[target.url] = state
    }
    let series = ProbeMetrics.series(for: targets)
    func best(_ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<3 {
            let start = ContinuousClock.now
            try body()
            best = min(best, (ContinuousClock.now - start).seconds * 1000)
        }
        return best
    }
    func render(_ set: MetricSet) -> [UInt8] {
        var out = Exposition(reservingCapacity: 64 * 1024 + series.count * 700)
        ProbeMetrics.write(states: states, series: series, set: set, into: &out)
        return out.bytes
    }
    let plain = best { _ = render(.default) }
    let full = best { _ = render(.full) }
    var size = 0
    let gzip = try best { size = try Exposition.gzipped(render(.default)).readableBytes }
    return (plain, full, gzip, Double(size) / 1e6)
}

/// The `--data` store at 100,000 URLs polled once a minute: one tick's batch (the first, then a steady one),
/// and the file's size after 60 minutes of them.
@Sendable func historyFigures(urls: Int = 100_000, minutes: Int = 60) async throws -> String {
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    let folder = "/tmp/urlpoll-bench-data-\(UInt32.random(in: 0...UInt32.max))"
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let store = try SQLiteHistoryStore(directory: folder)
    let start = 1_793_577_600.0
    func batch(minute: Int) -> HistoryBatch {
        var batch = HistoryBatch()
        for i in 0..<urls {
            let state = State(
                url: "http://127.0.0.1:18480/u/\(i)", name: "u\(i)", status: "200 OK", code: 200, health: .up,
                latency: .microseconds(500 + i % 20_000), since: start, checkedAt: start + Double(minute * 60 + i % 60))
            batch.count(state)
            if minute == 0 {
                batch.states[state.historyKey] = state
                batch.changes.append(HistoryChange(state, previous: nil))
            }
        }
        return batch
    }
    var first = 0.0
    var steady = Double.infinity
    for minute in 0..<minutes {
        let taken = batch(minute: minute)
        let elapsed = try await seconds { try await store.write(taken) }
        if minute == 0 { first = elapsed } else { steady = min(steady, elapsed) }
    }
    var size = 0
    for name in ["urlpoll.sqlite", "urlpoll.sqlite-wal"] {
        let attributes = try? FileManager.default.attributesOfItem(atPath: folder + "/" + name)
        size += (attributes?[.size] as? Int) ?? 0
    }
    return
        #""history_first_tick_ms": \#(first * 1000), "history_tick_ms": \#(steady * 1000), "history_db_mb_1h": \#(Double(size) / 1e6)"#
}

/// `/status` over `urls` URLs with `days` days of hour (and day) rollups written directly: how long one
/// document takes to make from the store (what every request cost before the cache; now once per tick),
/// and the 30-day sums as the previous schema read them (hour rows summed per day, twice: 30 and 7 days).
@Sendable func statusFigures(urls: Int, days: Int) async throws -> String {
    let folder = "/tmp/urlpoll-bench-status-\(UInt32.random(in: 0...UInt32.max))"
    defer { if !CommandLine.arguments.contains("--keep-data") { try? FileManager.default.removeItem(atPath: folder) } }
    let store = try SQLiteHistoryStore(directory: folder)
    let now = 1_793_577_600.0 + 12 * 3_600
    let targets = (0..<urls).map { Target(url: "http://127.0.0.1:18480/u/\($0)") }
    var fill = 0.0
    for day in (0..<days).reversed() {
        var batch = HistoryBatch()
        let dayStart = Int64(now) - Int64(now) % 86_400 - Int64(day) * 86_400
        for target in targets {
            var dayRollup = Rollup(start: dayStart)
            var hours: [Int64: Rollup] = [:]
            for hour in 0..<24 {
                let start = dayStart + Int64(hour) * 3_600
                guard Double(start) <= now else { break }
                var rollup = Rollup(start: start)
                rollup.polls = 60
                rollup.failures = hour == 3 ? 2 : 0
                rollup.latencySum = 0.06
                rollup.latencyMax = 0.002
                for _ in 0..<4 { rollup.sketch.add(seconds: 0.001) }
                hours[start] = rollup
                dayRollup.merge(rollup)
            }
            batch.hours[target.historyKey] = hours
            batch.days[target.historyKey] = [dayStart: dayRollup]
            batch.polls += 1
        }
        fill += try await seconds { try await store.write(batch) }
    }
    let states = Dictionary(
        uniqueKeysWithValues: targets.map {
            (
                $0.url,
                State(
                    url: $0.url, name: $0.name, status: "200 OK", code: 200, health: .up,
                    latency: .microseconds(900), since: now - 3_600, checkedAt: now)
            )
        })
    var best = Double.infinity
    var bytes = 0
    for _ in 0..<3 {
        best = min(
            best,
            try await seconds {
                bytes = try StatusDocument.make(
                    targets: targets, states: states, settings: Settings(), history: store, now: now
                ).json().count
            })
    }
    // The file's size (with `--keep-data`, the folder is left for a look at what fills it).
    var size = 0
    for name in ["urlpoll.sqlite", "urlpoll.sqlite-wal"] {
        let attributes = try? FileManager.default.attributesOfItem(atPath: folder + "/" + name)
        size += (attributes?[.size] as? Int) ?? 0
    }
    if CommandLine.arguments.contains("--keep-data") { print("kept: \(folder)") }
    return
        #""status_urls": \#(urls), "status_days": \#(days), "status_fill_s": \#(fill), "status_make_ms": \#(best * 1000), "status_mb": \#(Double(bytes) / 1e6), "status_db_mb": \#(Double(size) / 1e6)"#
}

/// The HTTP prober alone: `tasks` tasks, each probing in a loop for 5 s, no channels, monitor or Sleep.
@Sendable func clientProbesPerSecond(tasks: Int) async -> Double {
    final class Counter: Sendable { let value = Atomic<Int>(0) }
    let client = HTTPProber.makeClient(pollers: tasks)
    let prober = HTTPProber(client: client)
    let count = Counter()
    let start = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for worker in 0..<tasks {
            group.addTask {
                var i = 0
                while ContinuousClock.now - start < .seconds(5) {
                    i += 1
                    let target = Target(url: "http://127.0.0.1:18480/c/\(worker)-\(i)")
                    _ = await prober.probe(target, settings: Settings())
                    count.value.add(1, ordering: .relaxed)
                }
            }
        }
    }
    prober.shutdown()
    _ = try? await client.shutdown().get()
    return Double(count.value.load(ordering: .relaxed)) / 5
}

if CommandLine.arguments.contains("--report-only") {
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    let (same, new) = try await Task.detached { try await reportTicks(logger: logger, runs: 9) }.value
    print(#"{"report_tick_ms": \#(same * 1000), "report_tick_new_ms": \#(new * 1000)}"#)
} else if CommandLine.arguments.contains("--status-only") {
    let urls = CommandLine.arguments.firstIndex(of: "--urls").flatMap { Int(CommandLine.arguments[$0 + 1]) }
    let days = CommandLine.arguments.firstIndex(of: "--days").flatMap { Int(CommandLine.arguments[$0 + 1]) }
    let figures = try await Task.detached { try await statusFigures(urls: urls ?? 10_000, days: days ?? 30) }.value
    print("{" + figures + "}")
} else if CommandLine.arguments.contains("--history-only") {
    let urls = CommandLine.arguments.firstIndex(of: "--urls").flatMap { Int(CommandLine.arguments[$0 + 1]) }
    let figures = try await Task.detached { try await historyFigures(urls: urls ?? 100_000) }.value
    print("{" + figures + "}")
} else if CommandLine.arguments.contains("--client-only") {
    let probes = await Task.detached { await clientProbesPerSecond(tasks: 16) }.value
    let probes2 = await Task.detached { await clientProbesPerSecond(tasks: 2) }.value
    print(#"{"client_probes_s": \#(probes), "client_probes_2_s": \#(probes2)}"#)
} else {
    print(try await Task.detached { try await measure() }.value)
}
