import CLua
import Logging

extension ScriptHost: Reporter {
    public func report(_ states: [State]) async {
        guard let hook = self.config.report else { return }
        for (i, state) in states.enumerated() {
            // Started in two steps, so a call that makes no request costs no suspension.
            let result: Result<Void, ScriptError>
            switch self.startHook(
                hook, name: "report", nargs: 1, pushArgs: { self.pushState(state, index: i + 1, count: states.count) },
                read: { _ in () })
            {
            case .done(let done):
                result = done
            case .waiting(let call, let request):
                result = await self.finishHook(
                    call, waitingFor: request, timeout: self.timeout(forURL: state.url), read: { _ in () })
            }
            if case .failure(let error) = result, error.kind != .stopped {
                self.logFailure(error, hook: "report", url: state.url, fallback: "skipping this URL's report")
            }
        }
    }

    func pushState(_ state: State, index: Int? = nil, count: Int? = nil) {
        let lua = self.runtime
        lua.beginRecord(fields: 19)
        lua.setURLAndName(state.url, raw: state.rawURL, state.name)
        lua.set(.status, state.status)
        lua.set(.code, state.code)
        lua.set(.ok, state.ok)
        lua.set(.state, state.health.rawValue)
        lua.set(.error, state.error)
        lua.set(.detail, state.detail)
        lua.set(.errorCount, state.errorCount)
        lua.set(.latency, state.latency.seconds)
        lua.set(.polls, state.polls)
        lua.set(.since, state.since)
        lua.set(.checkedAt, state.checkedAt)
        lua.set(.lateness, state.lateness.seconds)
        lua.set(.index, index)
        lua.set(.count, count)
        if let tls = state.tls {
            lua.set(.tls) { lua.push(tls, now: state.checkedAt) }
        }
        if let dns = state.dns {
            lua.set(.rcode, dns.rcode)
            lua.set(.answers) { lua.push(dns.answers) }
        }
        if let timings = state.timings { lua.set(.timings) { lua.push(timings) } }
        if let http = state.http { lua.set(.http) { lua.push(http) } }
        lua.endRecord()
    }
}
