import FoundationEssentials

/// StateStore keeps the monitor's states in a file (`--state FILE`) so a restart resumes each URL's last
/// status and error count instead of starting over and re-alerting.
///
/// The file is JSON, replaced atomically (written beside it, then renamed), so a crash mid-write leaves the
/// previous version. A file that cannot be read or parsed is reported and ignored, never fatal.
public struct StateStore: Sendable {
    /// The file exists but is not a state file this version can read (torn, corrupt, another program's).
    public struct Unreadable: Error, CustomStringConvertible {
        public let description: String
    }

    /// The state file's path, as given to `--state`.
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// The saved states, or `[]` when there is no file yet.
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
