/// ReportTables keeps the table `report(s)` gets for each URL from one tick to the next, and what each
/// holds, so a tick rewrites only the fields whose values changed instead of building 10,000 tables (and
/// leaving them to the collector) every `status_interval`.
///
/// Kept tables stay in the Lua state, about 1 KiB each with an HTTP poll's `timings` and `http`, and the
/// collector lets garbage grow in proportion to what stays (twice it, at Lua's default pause): so only a
/// script with at most ``kept(memoryLimit:)`` URLs keeps them, as many as a quarter of the Lua memory limit
/// (`--lua-memory`) holds, 16,384 at the default 64 MiB. A script with more gets a new table per URL on
/// every tick, as all did before: at 100,000 URLs, keeping the first 16,384 raised the peak RSS by about
/// 50 MB.
///
/// The tables live in one Lua table in the registry, by slot (1, 2, …: the order URLs were first
/// reported); ``ScriptHost`` alone reads and writes them, as it does all of Lua.
struct ReportTables {
    /// The registry reference of the Lua table of tables, once the first is made.
    var ref: Int32?
    /// Each URL's slot, by the URL as written (``State/rawURL``: unique per URL).
    var slots: [String: Int32] = [:]
    /// What each slot's table holds now: the State and the tick's `index` and `count` it was last given.
    var shown: [(state: State, index: Int, count: Int)] = []

    /// The most URLs a script may have for their tables to be kept, under a Lua memory limit of
    /// `memoryLimit` bytes: 1 KiB each, a quarter of the limit.
    static func kept(memoryLimit: Int) -> Int {
        memoryLimit / 4 / 1024
    }
}
