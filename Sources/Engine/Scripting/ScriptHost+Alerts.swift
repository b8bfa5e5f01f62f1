import CLua
import Logging

extension ScriptHost: StateObserver {
    public func polled(_ state: State, previous: State?) async {
        guard let hook = self.config.onResult else { return }
        await self.callObserver(hook, name: "on_result", state, previous)
    }

    public func changed(_ state: State, previous: State?) async {
        guard let hook = self.config.onChange else { return }
        await self.callObserver(hook, name: "on_change", state, previous)
    }

    private func callObserver(_ hook: HookRef, name: StaticString, _ state: State, _ previous: State?) async {
        let result = await self.runHook(
            hook, name: name, timeout: self.timeout(forURL: state.url), nargs: 2,
            pushArgs: {
                self.pushState(state)
                if let previous { self.pushState(previous) } else { lua_pushnil(self.runtime.L) }
            },
            read: { _ in () })
        self.forwardAlerts()
        if case .failure(let error) = result, error.kind != .stopped {
            self.logFailure(error, hook: "\(name)", url: state.url, fallback: "continuing")
        }
    }
}
