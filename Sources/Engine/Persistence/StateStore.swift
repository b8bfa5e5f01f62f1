import Dispatch
import Foundation
import Synchronization

/// StateStore keeps the monitor's states in a file (`--state FILE`) so a restart resumes each URL's last
/// status and error count instead of starting over and re-alerting.
///
/// The file is JSON, replaced atomically (written beside it, then renamed), so a crash mid-write leaves the
/// previous version. A file that cannot be read or parsed is reported and ignored, never fatal.
///
/// The monitor hands each snapshot to ``submit(_:onError:)``, which encodes and writes it on the store's own
/// serial queue, off the monitor's actor; when snapshots come faster than the disk takes them, only the
/// latest waits. One store serves every monitor of a session (reloads included), so writes never race.
public final class StateStore: Sendable {
    /// The file exists but is not a state file this version can read (torn, corrupt, another program's).
    public struct Unreadable: Error, CustomStringConvertible {
        public let description: String
    }

    /// The state file's path, as given to `--state`.
    public let path: String
    private let queue: DispatchQueue
    /// The snapshot waiting to be written, and whether a write is scheduled on `queue`.
    private let pending = Mutex<(states: [State]?, scheduled: Bool)>((nil, false))

    public init(path: String) {
        self.path = path
        self.queue = DispatchQueue(label: "urlpoll.state")
    }

    /// Writes `states` off the caller's task and returns at once; a snapshot still waiting is replaced.
    /// A failure is told to `onError` in words (`cannot write the state file s.json: …`).
    public func submit(_ states: [State], onError: @escaping @Sendable (String) -> Void) {
        let schedule = self.pending.withLock { pending in
            pending.states = states
            defer { pending.scheduled = true }
            return !pending.scheduled
        }
        guard schedule else { return }
        self.queue.async {
            while let states = self.takePending() {
                do {
                    try self.save(states)
                } catch {
                    onError("cannot write the state file \(self.path): \(Self.words(error))")
                }
            }
        }
    }

    /// A failed write in words: the system's reason (strerror(3), with its errno name's number) when
    /// Foundation's error carries one, as it does for a missing folder, a full disk or no free descriptor;
    /// never Foundation's error dump.
    static func words(_ error: any Error) -> String {
        let error = error as NSError
        let posix = error.domain == NSPOSIXErrorDomain ? error : error.userInfo[NSUnderlyingErrorKey] as? NSError
        if let posix, posix.domain == NSPOSIXErrorDomain {
            return "\(String(cString: strerror(Int32(posix.code)))) (errno \(posix.code))"
        }
        return error.localizedDescription
    }

    private func takePending() -> [State]? {
        self.pending.withLock { pending in
            defer { pending.states = nil }
            if pending.states == nil { pending.scheduled = false }
            return pending.states
        }
    }

    /// Returns once every snapshot submitted before the call is written (or has failed).
    public func flush() async {
        await withCheckedContinuation { continuation in
            self.queue.async { continuation.resume() }
        }
    }

    /// The saved states, or `[]` when there is no file yet; each URL is as printed (``State/url``, no
    /// password): pair them with the script's URLs with ``match(_:to:)``.
    public func load() throws(Unreadable) -> [State] {
        let url = URL(fileURLWithPath: self.path)
        guard FileManager.default.fileExists(atPath: self.path) else { return [] }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw Unreadable(description: "cannot read \(self.path): \(error)")
        }
        do {
            let file = try JSONDecoder().decode(File.self, from: data)
            guard file.version == 1 else {
                throw Unreadable(description: "\(self.path) has version \(file.version); this urlpoll reads version 1")
            }
            return file.states.map(\.restored)
        } catch let error as Unreadable {
            throw error
        } catch {
            throw Unreadable(description: "\(self.path) is not a urlpoll state file (torn or corrupt?): \(error)")
        }
    }

    /// Pairs the states ``load()`` read with the URLs of the script now loaded, and returns them keyed as the
    /// monitor keys them (``State/rawURL`` set to the target's URL as written).
    ///
    /// The file holds each URL as printed, its password replaced by `xxxxx`, never the password itself; so
    /// a state goes to the one target that prints as its URL. Where several targets print alike (they differ
    /// only by their password), it goes to the one whose `name` is the one saved (their default names are
    /// numbered, `… (2)`), and to none when that is not one target: such a URL starts fresh rather than take
    /// another's state. Files written before URLs were told apart this way resume unchanged.
    public static func match(_ saved: [State], to targets: [Target]) -> [State] {
        var byURL: [String: [State]] = [:]
        for state in saved { byURL[state.url, default: []].append(state) }
        var printedAlike: [String: Int] = [:]
        for target in targets { printedAlike[target.displayURL, default: 0] += 1 }
        var matched: [State] = []
        for target in targets {
            guard let candidates = byURL[target.displayURL] else { continue }
            var state: State?
            if printedAlike[target.displayURL] == 1 {
                state = candidates.first
            } else {
                let named = candidates.filter { $0.name == target.name }
                state = named.count == 1 ? named[0] : nil
            }
            if var state {
                state.rawURL = target.url
                state.ordinal = target.ordinal
                matched.append(state)
            }
        }
        return matched
    }

    /// Replaces the file with `states`, atomically.
    public func save(_ states: [State]) throws {
        let file = File(version: 1, states: states.map(Saved.init))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(file).write(to: URL(fileURLWithPath: self.path), options: .atomic)
    }

    private struct File: Codable {
        let version: Int
        let states: [Saved]
    }

    private struct Saved: Codable {
        let url: String
        let name: String
        let status: String
        let state: String
        let code: Int?
        let error: String?
        let detail: String?
        let error_count: Int
        let latency: Double
        let polls: Int
        let since: Double
        let checked_at: Double

        init(_ s: State) {
            self.url = s.url
            self.name = s.name
            self.status = s.status
            self.state = s.health.rawValue
            self.code = s.code
            self.error = s.error
            self.detail = s.detail
            self.error_count = s.errorCount
            self.latency = s.latency.seconds
            self.polls = s.polls
            self.since = s.since
            self.checked_at = s.checkedAt
        }

        var restored: State {
            State(
                url: self.url, name: self.name, status: self.status, code: self.code,
                health: Health(rawValue: self.state) ?? .down, error: self.error, detail: self.detail,
                errorCount: max(0, self.error_count), latency: Backoff.duration(fromSeconds: self.latency) ?? .zero,
                polls: max(0, self.polls), since: self.since, checkedAt: self.checked_at)
        }
    }
}
