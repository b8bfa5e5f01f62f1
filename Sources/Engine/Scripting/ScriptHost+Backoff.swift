import CLua
import Logging

extension ScriptHost: SleepPolicy {
    public func delay(for resource: Resource, settings: Settings) -> Duration {
        let fallback = Backoff.linear(
            interval: settings.interval(for: resource.target), errorBackoff: settings.errorBackoff,
            errorCount: resource.errorCount)
        guard let hook = resource.target.backoff ?? self.config.backoff else { return fallback }
        let result = self.runtime.callHook(
            hook, name: "backoff", nargs: 1,
            pushArgs: { self.pushBackoffArgument(resource, settings: settings, default: fallback) },
            read: { index -> Result<Duration, ScriptError> in
                if let seconds = self.runtime.number(at: index), let delay = Backoff.duration(fromSeconds: seconds) {
                    return .success(delay)
                }
                let got = self.runtime.describe(at: index)
                return .failure(
                    ScriptError(
                        .badReturn,
                        "\(hook.location): backoff returned \(got); expected a finite number of seconds >= 0"))
            })
        self.forwardAlerts()
        switch result.flatMap({ $0 }) {
        case .success(let delay):
            return delay
        case .failure(let error):
            self.logFailure(
                error, hook: "backoff", url: resource.target.displayURL,
                fallback: "using the default \(formatSeconds(fallback.seconds)) s for this sleep")
            return fallback
        }
    }

    private func pushBackoffArgument(_ resource: Resource, settings: Settings, default fallback: Duration) {
        let state = resource.state
        let lua = self.runtime
        lua.beginRecord(fields: 14)
        lua.set(.defaultSleep, fallback.seconds)
        lua.setURLAndName(resource.target.displayURL, raw: resource.target.url, resource.target.name)
        lua.set(.errorCount, resource.errorCount)
        lua.set(.status, state?.status)
        lua.set(.code, state?.code)
        lua.set(.ok, state?.ok ?? false)
        lua.set(.state, state?.health.rawValue)
        lua.set(.latency, (state?.latency ?? .zero).seconds)
        lua.set(.polls, resource.polls)
        if let last = resource.lastSleep { lua.set(.lastSleep, last.seconds) }
        lua.set(.interval, settings.interval(for: resource.target).seconds)
        if resource.target.captureHeaders {
            lua.set(.headers) { lua.push(headers: resource.headers) }
        }
        lua.endRecord()
    }
}
