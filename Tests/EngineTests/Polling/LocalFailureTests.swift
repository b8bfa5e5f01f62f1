import NIOCore
import Synchronization
import Testing

@testable import Engine

#if canImport(Glibc)
    import Glibc
#endif

/// A poll urlpoll could not make because it ran out of file descriptors is urlpoll's problem, not the
/// target's: no State, no observer call, a retry after a short fixed delay, one log line per interval.
@Suite(.timeLimit(.minutes(2))) struct LocalFailureTests {
    static let outOfDescriptors = ProbeResult(.failure(ProbeFailure.local(errno: EMFILE)!))

    @Test func poll_whenOutOfDescriptors_recordsNoState_retriesSoon_andLogsOncePerInterval() async throws {
        // Given: a healthy URL whose polls hit EMFILE twice, then once more a poll interval later.
        let clock = ManualClock()
        let url = "http://127.0.0.2:8080/"
        let prober = ScriptedProber([
            url: [
                .status(200), Self.outOfDescriptors, Self.outOfDescriptors, .status(200), Self.outOfDescriptors,
                .status(200),
            ]
        ])
        let recorder = StateRecorder()
        let monitor = StateMonitor(urls: [url], reporter: RecordingReporter(), observers: [recorder])
        let messages = Mutex([String]())
        let sut = PollerPool(
            settings: PollerPoolTests.settings(), targets: [Target(url: url)], prober: prober,
            policy: LinearBackoff(), monitor: monitor, clock: clock,
            onLocalFailure: { message in messages.withLock { $0.append(message) } })

        try await PollerPoolTests.withRunning(sut, clock: clock) { sleeps in
            // Then: each poll that was not made is retried after 1 s, not after the error backoff.
            for expected in [60, 1, 1, 60, 1, 60] {
                let sleep = await PollerPoolTests.nextSleep(&sleeps)
                #expect(sleep == .seconds(expected))
                clock.advance(by: sleep ?? .zero)
            }
        }

        // Then: only the three real polls reached the monitor and its observers, all up, no errors.
        #expect(prober.polls(of: url) == 6)
        #expect(recorder.states.map(\.status) == ["200 OK", "200 OK", "200 OK"])
        let state = try #require(await monitor.snapshot().first)
        #expect(state.errorCount == 0)
        #expect(state.polls == 3)
        #expect(state.health == .up)
        // Then: one line per poll interval, counting the polls not made since the last one.
        #expect(
            messages.withLock { $0 } == [
                "urlpoll has run out of file descriptors (EMFILE, its own open-file limit): 1 poll not made, each retried in 1 s and not counted against its URL; raise the limit (ulimit -n) or lower pollers",
                "urlpoll has run out of file descriptors (EMFILE, its own open-file limit): 2 polls not made, each retried in 1 s and not counted against its URL; raise the limit (ulimit -n) or lower pollers",
            ])
    }

    @Test(arguments: [EMFILE, ENFILE])
    func classify_whenOutOfDescriptors_isLocal_forEveryProbeKind(code: Int32) throws {
        // Given: the error socket(2), accept(2) or connect(2) gives under the limit, as NIO reports it.
        let error = IOError(errnoCode: code, reason: "socket")
        // Then: HTTP, TCP and DNS (through HTTPProber.classify) and TLS all call it urlpoll's own.
        #expect(HTTPProber.classify(error, timeout: .seconds(1)).kind == .local)
        #expect(TLSProber.classify(error, timeout: .seconds(1)).kind == .local)
        #expect(TCPProber.inWords(HTTPProber.classify(error, timeout: .seconds(1)), "127.0.0.2:80").kind == .local)
        // Then: any other errno is not.
        #expect(ProbeFailure.local(errno: ECONNREFUSED) == nil)
    }
}
