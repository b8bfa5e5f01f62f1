#if canImport(Glibc)
    import CMalloc
    import Glibc
#endif

/// MallocTuning sets two of glibc malloc's parameters at start (mallopt(3)), so that the resident size
/// stays level over reloads. A setting the operator has made (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_ARENA_MAX`,
/// or the same in `GLIBC_TUNABLES`) stands.
///
/// Why: a reload builds the new script's targets, Resources, States and Lua state while the old ones are
/// still alive, then frees the old. Their large blocks (arrays and hash tables of 50,000 entries, Lua's
/// tables) came from malloc's heap, because glibc raises its mmap threshold (from 128 KiB up to 32 MiB)
/// each time a mapped block is freed; freed, they left holes that the next reload's blocks did not fit and
/// `malloc_trim` could only partly give back. With 50,000 URLs and 20 reloads (`bench/reload_rss.py`,
/// release build, 2 cores) the resident size after the last reload was 10–18 % above the first with
/// glibc's defaults, and 15.5 % with the arena cap alone; with the threshold fixed at 128 KiB as well,
/// large blocks are mapped and unmapped on their own and it was +6.5 % and +2.4 % in two runs (peaks
/// 111 and 103 MB, against 120–123 MB before), within the 10 % issue 11 allows. Capping the arenas at 2
/// keeps freed memory from spreading over up to 8 arenas per core.
/// Source: mallopt(3) (`M_MMAP_THRESHOLD`: setting it turns the dynamic threshold off; `M_ARENA_MAX`,
/// glibc 2.10 and later).
enum MallocTuning {
    /// Blocks this large and over are mapped on their own (glibc's initial value, made fixed).
    static let mmapThreshold: Int32 = 128 << 10
    /// The most arenas glibc may make.
    static let maximumArenas: Int32 = 2

    /// Applies both settings, each unless the environment sets it.
    static func apply() {
        #if canImport(Glibc)
            let tunables = getenv("GLIBC_TUNABLES").map { String(cString: $0) } ?? ""
            if getenv("MALLOC_MMAP_THRESHOLD_") == nil, !tunables.contains("glibc.malloc.mmap_threshold") {
                _ = mallopt(M_MMAP_THRESHOLD, Self.mmapThreshold)
            }
            if getenv("MALLOC_ARENA_MAX") == nil, !tunables.contains("glibc.malloc.arena_max") {
                _ = mallopt(M_ARENA_MAX, Self.maximumArenas)
            }
        #endif
    }
}
