import Synchronization

/// CommitWait is one change's wait for its commit (``HistoryWriter/changedAwaitingCommit(_:previous:)``): ended once,
/// by the writer when the change is committed or its write failed, or by the time limit (``ChangeQueue``).
final class CommitWait: Sendable {
    private struct Waiting {
        var continuation: CheckedContinuation<Void, Never>?
        var ended = false
        var timedOut = false
    }

    private let waiting = Mutex(Waiting())

    /// Whether the time limit, not the writer, ended the wait.
    var timedOut: Bool { self.waiting.withLock { $0.timedOut } }

    /// Whether the wait has ended (the change is committed, its write failed, or the limit passed).
    var hasEnded: Bool { self.waiting.withLock { $0.ended } }

    /// Ends the wait (again: nothing); `timedOut` when the time limit ends it.
    func resume(timedOut: Bool = false) {
        let continuation = self.waiting.withLock { waiting -> CheckedContinuation<Void, Never>? in
            if !waiting.ended { waiting.timedOut = timedOut }
            waiting.ended = true
            defer { waiting.continuation = nil }
            return waiting.continuation
        }
        continuation?.resume()
    }

    /// Returns once ``resume()`` was called, before or after.
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ended = self.waiting.withLock { waiting in
                if !waiting.ended { waiting.continuation = continuation }
                return waiting.ended
            }
            if ended { continuation.resume() }
        }
    }
}
