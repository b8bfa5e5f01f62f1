#if canImport(Glibc)
    import Glibc
#endif

/// ProcessMetrics writes the standard process families at scrape time, read from Linux's /proc as the
/// Go and Python clients do: `process_cpu_seconds_total` (counter, user + system CPU seconds),
/// `process_resident_memory_bytes`, `process_open_fds` and `process_start_time_seconds` (gauges, the last
/// in seconds since the epoch). On a system without /proc they are left out.
///
/// Source: https://prometheus.io/docs/instrumenting/writing_clientlibs/#process-metrics
public enum ProcessMetrics {
    public static func write(into out: inout Exposition) {
        #if canImport(Glibc)
            self.writeFromProc(into: &out)
        #endif
    }
}

#if canImport(Glibc)
    extension ProcessMetrics {
        private static func writeFromProc(into out: inout Exposition) {
            guard let stat = self.read("/proc/self/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")) else {
                return
            }
            // Fields after "pid (comm)", numbered as in proc(5): 3 is the state.
            let fields = stat[(close + 2)...].split(separator: UInt8(ascii: " ")).map {
                Double(String(decoding: $0, as: UTF8.self)) ?? 0
            }
            func field(_ number: Int) -> Double { number - 3 < fields.count ? fields[number - 3] : 0 }
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
            out.family("process_cpu_seconds_total", .counter, help: "Total user and system CPU time spent in seconds.")
            out.sample("process_cpu_seconds_total", (field(14) + field(15)) / ticks)
            out.family("process_resident_memory_bytes", .gauge, help: "Resident memory size in bytes.")
            out.sample("process_resident_memory_bytes", field(24) * pageSize)
            if let fds = self.openFileDescriptors() {
                out.family("process_open_fds", .gauge, help: "Number of open file descriptors.")
                out.sample("process_open_fds", Double(fds))
            }
            if let boot = self.bootTime() {
                out.family(
                    "process_start_time_seconds", .gauge, help: "Start time of the process since unix epoch in seconds."
                )
                out.sample("process_start_time_seconds", boot + field(22) / ticks)
            }
        }

        /// Seconds since the epoch at which the machine booted (`btime` in /proc/stat).
        private static func bootTime() -> Double? {
            guard let text = self.read("/proc/stat") else { return nil }
            for line in text.split(separator: UInt8(ascii: "\n")) where line.starts(with: "btime ".utf8) {
                return Double(String(decoding: line.dropFirst(6), as: UTF8.self))
            }
            return nil
        }

        private static func openFileDescriptors() -> Int? {
            guard let dir = opendir("/proc/self/fd") else { return nil }
            defer { closedir(dir) }
            var count = 0
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { $0.first }
                if name != UInt8(ascii: ".") { count += 1 }
            }
            return count - 1  // the descriptor opendir holds
        }

        /// A whole /proc file (their sizes read as 0, so read to the end).
        private static func read(_ path: String) -> [UInt8]? {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            defer { _ = Glibc.close(fd) }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                bytes.append(contentsOf: buffer[..<n])
            }
            return bytes
        }
    }
#endif
