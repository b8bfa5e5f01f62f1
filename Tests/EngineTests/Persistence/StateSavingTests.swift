import Engine
import Foundation
import Synchronization
import Testing

/// Saving the monitor's states to the `--state` file, with ticks driven by the manual clock.
@Suite(.timeLimit(.minutes(1))) struct StateSavingTests {
    /// A reporter whose first report waits until the test opens it.
    final class GatedReporter: Reporter {
        let entered: AsyncStream<Void>
        private let enteredContinuation: AsyncStream<Void>.Continuation
        let reports: AsyncStream<[State]>
        private let reportsContinuation: AsyncStream<[State]>.Continuation
        private let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
        private let calls = Mutex(0)

        init() {
            (self.entered, self.enteredContinuation) = AsyncStream.makeStream()
            (self.reports, self.reportsContinuation) = AsyncStream.makeStream()
        }

        func report(_ states: [State]) async {
            let first = self.calls.withLock { n in
                n += 1
                return n == 1
            }
            if first {
                await withCheckedContinuation { continuation in
                    self.gate.withLock { $0 = continuation }
                    self.enteredContinuation.yield()
                }
            }
            self.reportsContinuation.yield(states)
        }

        func open() {
            self.gate.withLock { $0 }?.resume()
        }
    }

    static func state(_ url: String) -> State {
        State(url: url, name: url, status: "200 OK", code: 200, health: .up)
    }

    /// Issue 14: of two urlpolls started together, the refused one sometimes said `(process unknown)`: the
    /// holder writes its process id just after taking the lock. Here the lock is held and the file still
    /// empty, as in that moment; the refusal names the holder all the same.
    @Test func lock_heldButItsFileStillEmpty_namesTheHolder() throws {
        let path = "/tmp/urlpoll-lock-\(UUID().uuidString.prefix(8))"
        defer { unlink(path + ".lock") }
        let fd = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)

        #expect {
            try StateFileLock(statePath: path)
        } throws: { error in
            guard let refused = error as? StateFileLock.Refused else { return false }
            return refused.holder == "\(getpid())" && refused.description.contains("(process \(getpid()))")
        }
    }

    @Test func submit_whenTheFileCannotBeWritten_saysWhyInWords() async throws {
        // Given: a state file in a folder that does not exist.
        let directory = try TemporaryScript("")
        let store = StateStore(path: directory.sibling("missing/state.json"))
        let errors = Mutex([String]())

        // When: a snapshot is written.
        store.submit([Self.state("http://127.0.0.1:9/a")]) { message in errors.withLock { $0.append(message) } }
        await store.flush()

        // Then: the reason in words, not Foundation's error dump (`Error Domain=… UserInfo={…}`).
        let said = errors.withLock { $0 }
        #expect(said.count == 1)
        let message = try #require(said.first)
        #expect(message.hasPrefix("cannot write the state file \(store.path): "), "\(message)")
        #expect(message.contains("exist"), "\(message)")
        #expect(!message.contains("Domain") && !message.contains("UserInfo"), "\(message)")
    }

    @Test func tick_whenAStateArrivesDuringTheReport_savesItOnTheNextTick() async throws {
        // Given: a monitor with a state file, ticking every 10 s of the manual clock.
        let directory = try TemporaryScript("")
        let store = StateStore(path: directory.sibling("state.json"))
        let (a, b) = ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
        let reporter = GatedReporter()
        let monitor = StateMonitor(urls: [a, b], reporter: reporter, store: store)
        let clock = ManualClock()
        await monitor.update(Self.state(a))
        var sleeps = clock.sleeps.makeAsyncIterator()
        var entered = reporter.entered.makeAsyncIterator()
        var reports = reporter.reports.makeAsyncIterator()

        await withTaskGroup(of: Void.self) { group in
            group.addTask { await monitor.run(every: .seconds(10), clock: clock) }

            // When: b's first state arrives while the first tick's report is under way…
            _ = await sleeps.next()
            clock.advance(by: .seconds(10))
            _ = await entered.next()
            await monitor.update(Self.state(b))
            reporter.open()
            #expect(await reports.next()?.map(\.url) == [a])

            // …and the next tick comes with nothing new.
            _ = await sleeps.next()
            clock.advance(by: .seconds(10))
            _ = await reports.next()
            group.cancelAll()
        }
        await store.flush()

        // Then: b was saved.
        #expect(try store.load().map(\.url) == [a, b])
    }
}
