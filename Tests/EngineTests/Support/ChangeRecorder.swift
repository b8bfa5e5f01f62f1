import Engine
import Synchronization

/// ChangeRecorder keeps every change the monitor announces (what `on_change` would be called for).
final class ChangeRecorder: StateObserver {
    private let recorded = Mutex([State]())
    var changes: [State] { self.recorded.withLock { $0 } }
    var count: Int { self.recorded.withLock { $0.count } }

    func changed(_ state: State, previous: State?) async {
        self.recorded.withLock { $0.append(state) }
    }
}
