import Engine
import Synchronization

/// ScriptedProber answers each URL's polls from a list, in order; the last answer repeats.
final class ScriptedProber: Prober {
    private let answers: Mutex<[String: [ProbeResult]]>
    private let counts = Mutex([String: Int]())

    init(_ answers: [String: [ProbeResult]]) {
        self.answers = Mutex(answers)
    }

    func probe(_ target: Target, settings: Settings) async -> ProbeResult {
        self.counts.withLock { $0[target.url, default: 0] += 1 }
        return self.answers.withLock { answers in
            guard var list = answers[target.url], !list.isEmpty else {
                return .failed(.error, "no scripted answer for \(target.url)")
            }
            let first = list.removeFirst()
            if !list.isEmpty { answers[target.url] = list }
            return first
        }
    }

    func polls(of url: String) -> Int {
        self.counts.withLock { $0[url] ?? 0 }
    }
}

/// RecordingReporter passes each report on to `next` (if any), then publishes it on `reports`.
struct RecordingReporter: Reporter {
    let next: (any Reporter)?
    let reports: AsyncStream<[State]>
    private let continuation: AsyncStream<[State]>.Continuation

    init(next: (any Reporter)? = nil) {
        self.next = next
        (self.reports, self.continuation) = AsyncStream.makeStream()
    }

    func report(_ states: [State]) async {
        await self.next?.report(states)
        self.continuation.yield(states)
    }
}
