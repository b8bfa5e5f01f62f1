#if canImport(Glibc)
    import Glibc
#endif
import Synchronization
import UnixSignals

/// SIGTERM and SIGINT caught from the process's first instruction (``install()``, first thing in `main`),
/// before `run`'s session traps them itself: one that comes while the arguments are parsed or the script is
/// loaded is recorded (``take()``) and stops the session cleanly as soon as it starts, instead of ending the
/// process by the signal's default action (exit status 143 or 130).
///
/// The handler only stores the signal's number in an atomic, which is async-signal-safe (POSIX.1-2017,
/// 2.4.3 "Signal Actions"). Commands other than `run` give the signals their default action back
/// (``restore()``), re-raising one that came meanwhile.
enum EarlySignals {
    private static let received = Atomic<Int32>(0)

    /// Catches SIGTERM and SIGINT, recording the last one that comes.
    static func install() {
        for signal in [SIGTERM, SIGINT] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                EarlySignals.received.store(number, ordering: .sequentiallyConsistent)
            }
            sigemptyset(&action.sa_mask)
            // Calls the handler interrupts are restarted, as they would be without it.
            action.sa_flags = SA_RESTART
            sigaction(signal, &action, nil)
        }
    }

    /// Gives SIGTERM and SIGINT their default action back, and returns the one that came meanwhile (0:
    /// none).
    static func take() -> Int32 {
        Glibc.signal(SIGTERM, SIG_DFL)
        Glibc.signal(SIGINT, SIG_DFL)
        return Self.received.exchange(0, ordering: .sequentiallyConsistent)
    }

    /// For commands that do not trap the signals: their default action back, and one that came meanwhile
    /// raised again, so it acts as it would have.
    static func restore() {
        let signal = Self.take()
        if signal != 0 { raise(signal) }
    }
}

/// The stop requests (SIGTERM, SIGINT) of one `run` session, from its start on: whoever is doing the work
/// of the moment (preparing the shared schedule, then the services) says what a stop does
/// (``onStop(_:)``), and one that came earlier does it at once.
final class StopRequests: Sendable {
    private let state = Mutex<(stopped: Bool, handler: (@Sendable () -> Void)?)>((false, nil))

    /// Whether a stop was requested.
    var stopped: Bool { self.state.withLock { $0.stopped } }

    /// Records a stop request and calls the handler of the moment.
    func stop() {
        let handler = self.state.withLock { state in
            state.stopped = true
            return state.handler
        }
        handler?()
    }

    /// Makes `handler` what a stop does from now on (replacing the one before); called at once when a stop
    /// came already.
    func onStop(_ handler: @escaping @Sendable () -> Void) {
        let stopped = self.state.withLock { state in
            state.handler = handler
            return state.stopped
        }
        if stopped { handler() }
    }

    /// Runs `body` with `signals` trapped (and one caught before, ``EarlySignals``, taken as come), each
    /// signal a stop request.
    static func trapping<T>(
        _ signals: [UnixSignal], _ body: (StopRequests?) async throws -> T
    ) async throws -> T {
        guard !signals.isEmpty else { return try await body(nil) }
        let early = EarlySignals.take()
        let sequence = await UnixSignalsSequence(trapping: signals)
        let requests = StopRequests()
        if early != 0 { requests.stop() }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in sequence { requests.stop() }
            }
            defer { group.cancelAll() }
            return try await body(requests)
        }
    }
}

extension StopRequests {
    /// Waits for `work`, or for a stop request (`stops`), whichever comes first; a stop cancels `work`
    /// and throws `CancellationError` at once, without waiting for `work` to heed it.
    static func first(of work: Task<Void, any Error>, or stops: StopRequests?) async throws {
        guard let stops else { return try await work.value }
        let once = Mutex<CheckedContinuation<Result<Void, any Error>, Never>?>(nil)
        let finish = { @Sendable (outcome: Result<Void, any Error>) in
            once.withLock { continuation in
                continuation?.resume(returning: outcome)
                continuation = nil
            }
        }
        let outcome = await withCheckedContinuation { continuation in
            once.withLock { $0 = continuation }
            Task {
                do {
                    try await work.value
                    finish(.success(()))
                } catch {
                    finish(.failure(error))
                }
            }
            stops.onStop {
                work.cancel()
                finish(.failure(CancellationError()))
            }
        }
        try outcome.get()
    }
}
