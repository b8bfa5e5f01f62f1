import Engine
import Synchronization

/// StateRecorder keeps every State the monitor receives, and publishes each on `polls`.
final class StateRecorder: StateObserver {
    private let recorded = Mutex([State]())
    var states: [State] { self.recorded.withLock { $0 } }
    let polls: AsyncStream<State>
    private let continuation: AsyncStream<State>.Continuation

    init() {
        (self.polls, self.continuation) = AsyncStream.makeStream()
    }

    func polled(_ state: State, previous: State?) async {
        self.recorded.withLock { $0.append(state) }
        self.continuation.yield(state)
    }

    func changed(_ state: State, previous: State?) async {}

    private let tickCount = Mutex(0)
    /// The monitor's ticks heard (``StateObserver/ticked()``).
    var ticks: Int { self.tickCount.withLock { $0 } }

    func ticked() async {
        self.tickCount.withLock { $0 += 1 }
    }
}
