import ArgumentParser
import Engine

@main
struct Urlpoll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "urlpoll",
        abstract: "Poll URLs on a schedule, with the lists, backoff, reports and alerts written in Lua.",
        discussion: """
            A Lua 5.4 script declares the URLs (`urls`), the settings (`pollers`, `poll_interval`, \
            `status_interval`, `error_backoff`, `timeout`, `method`) and optional hooks: `backoff(r)` returns \
            the seconds to wait before the next poll of a URL, `report(s)` is called for each URL on every \
            monitor tick. Settings given on the command line override the script's.

            Examples:
              urlpoll demo
              urlpoll check scripts/default.lua
              urlpoll once scripts/default.lua --format json
              urlpoll run scripts/backoff.lua --pollers 8 -- extra args for the script

            The Lua API reference is docs/SCRIPTING.md.
            """,
        version: urlpollVersion,
        subcommands: [Run.self, Check.self, Once.self, Demo.self]
    )

    /// As ArgumentParser's, but the open-file limit is raised first (``FileLimit``) and glibc's malloc tuned
    /// for reloads (``MallocTuning``), and standard output's queue is written out before the process exits (for
    /// at most 2 s after the reader last took anything, so a reader that stopped cannot keep urlpoll alive).
    /// SIGTERM and SIGINT are caught first of all (``EarlySignals``): `run` takes one that came while its
    /// arguments were parsed or its script loaded as a stop; the other commands give them their default
    /// action back.
    static func main() async {
        EarlySignals.install()
        MallocTuning.apply()
        FileLimit.raise()
        do {
            var command = try parseAsRoot()
            if !(command is Run) { EarlySignals.restore() }
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            StandardOutput.shared.drain()
            exit(withError: error)
        }
        StandardOutput.shared.drain()
        exit()
    }
}
