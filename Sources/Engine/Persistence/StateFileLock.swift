#if canImport(Glibc)
    import Glibc
#endif

/// StateFileLock keeps a second urlpoll off a `--state` file: two instances on one file would overwrite each
/// other's states (the last writer wins) and the survivor would re-alert on restart.
///
/// It is an advisory lock, `flock(2)` with `LOCK_EX | LOCK_NB`, on a file beside the state file
/// (`FILE.lock`, holding the owner's process id). The state file itself cannot carry it: every save replaces
/// it by rename, and a lock belongs to the replaced inode. The lock lasts as long as the process; the kernel
/// drops it when the process ends, `kill -9` included, so a stale lock file never blocks a restart. The
/// descriptor is close-on-exec, so commands run by `urlpoll.exec` do not inherit the lock.
///
/// The owner writes its process id just after it takes the lock, so one of two urlpolls started together can
/// find the lock held and the file still empty; it then reads the holder from the kernel's table of locks
/// (`/proc/locks`, the `FLOCK` line of the lock file's device and inode; proc(5)), so it never says
/// "process unknown" while the holder runs.
public final class StateFileLock: Sendable {
    /// Why the lock was not taken, in words (`the state file s.json is in use by another urlpoll (process
    /// 4242)…`).
    public struct Refused: Error, CustomStringConvertible {
        public let description: String
        /// The process id of the urlpoll holding the lock ("unknown" if it could not be read), when that is
        /// why; nil when the lock file could not be opened or locked at all.
        public var holder: String?
    }

    /// The lock file's path: the state file's, with `.lock` appended.
    public let path: String
    private let descriptor: Int32

    /// Takes the lock for the state file at `statePath`, or throws at once if another process has it.
    public init(statePath: String) throws(Refused) {
        self.path = statePath + ".lock"
        let fd = open(self.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw Refused(
                description: "cannot lock the state file \(statePath): cannot open \(self.path): \(Self.words(errno))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let error = errno
            let owner = Self.owner(fd)
            close(fd)
            guard error == EWOULDBLOCK else {
                throw Refused(
                    description: "cannot lock the state file \(statePath) (\(self.path)): \(Self.words(error))")
            }
            throw Refused(
                description:
                    "the state file \(statePath) is in use by another urlpoll (process \(owner ?? "unknown")); two instances on one state file would overwrite each other's states: give each its own --state file",
                holder: owner ?? "unknown")
        }
        self.descriptor = fd
        var pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        pid.withUTF8 { _ = pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit {
        close(self.descriptor)
    }

    /// The holder's process id: the one it wrote in the file, or else the kernel's record of the lock.
    private static func owner(_ fd: Int32) -> String? {
        var bytes = [UInt8](repeating: 0, count: 32)
        let n = pread(fd, &bytes, bytes.count, 0)
        if n > 0 {
            let text = String(decoding: bytes[0..<n], as: UTF8.self).filter { $0 != "\n" }
            if Int(text) != nil { return text }
        }
        return Self.lockHolder(fd)
    }

    /// The process holding a `flock(2)` lock on `fd`'s file, from `/proc/locks` (proc(5): `1: FLOCK  ADVISORY
    /// WRITE 4242 fe:00:16220265 0 EOF`; waiters' lines start `1: ->`), or nil.
    private static func lockHolder(_ fd: Int32) -> String? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        // The kernel prints the file as `%02x:%02x:%lu`: major, minor (hex), inode; glibc's `dev_t` holds
        // them as sys/sysmacros.h's gnu_dev_major and gnu_dev_minor read them.
        func hex(_ n: UInt64) -> String {
            let text = String(n, radix: 16)
            return text.count < 2 ? "0" + text : text
        }
        let dev = UInt64(info.st_dev)
        let major = ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~UInt64(0xFFF))
        let minor = (dev & 0xFF) | ((dev >> 12) & ~UInt64(0xFF))
        let file = "\(hex(major)):\(hex(minor)):\(info.st_ino)"
        guard let table = fopen("/proc/locks", "r") else { return nil }
        defer { fclose(table) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, table) > 0, let text = line {
            // `N:`, `FLOCK`, `ADVISORY`, `WRITE`, pid, file, …; a waiter's line has `->` after `N:`.
            let fields = String(cString: text).split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK", fields[5] == file, Int(fields[4]) != nil else { continue }
            return String(fields[4])
        }
        return nil
    }

    private static func words(_ error: Int32) -> String {
        String(cString: strerror(error))
    }
}
