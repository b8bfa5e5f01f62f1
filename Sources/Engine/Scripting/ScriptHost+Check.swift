import CLua
import Logging

extension ScriptHost: Checker {
    public func check(_ target: Target, _ result: ProbeResult) -> Verdict? {
        guard let hook = target.check ?? self.config.check,
            case .response(let code, let reason) = result.outcome
        else { return nil }
        let verdict = self.runtime.callHook(
            hook, name: "check", nargs: 1, nresults: 2,
            pushArgs: {
                let lua = self.runtime
                lua.beginRecord(fields: 9)
                lua.setURLAndName(target.displayURL, target.name)
                lua.set(.status, reason.isEmpty ? "\(code)" : "\(code) \(reason)")
                lua.set(.code, code)
                lua.set(.ok, target.expect.contains(code))
                lua.set(.latency, result.latency.seconds)
                lua.set(.headers) { self.pushHeaders(result.headers) }
                lua.set(.body) { lua.push(bytes: result.body ?? []) }
                lua.endRecord()
            },
            read: { first in self.readVerdict(hook, at: first) })
        self.forwardAlerts()
        switch verdict.flatMap({ $0 }) {
        case .success(let verdict):
            return verdict
        case .failure(let error):
            self.logFailure(error, hook: "check", url: target.displayURL, fallback: "judging by expect instead")
            return nil
        }
    }

    /// Reads check's results: `"up" | "degraded" | "down"` (or true/false, or nil) and an optional message.
    private func readVerdict(_ hook: HookRef, at value: Int32) -> Result<Verdict?, ScriptError> {
        let L = self.runtime.L
        let message = self.runtime.string(at: value + 1)
        switch lua_type(L, value) {
        case LUA_TNIL:
            return .success(nil)
        case LUA_TBOOLEAN:
            return .success(Verdict(lua_toboolean(L, value) != 0 ? .up : .down, message: message))
        default:
            if let text = self.runtime.string(at: value), let health = Health(rawValue: text) {
                return .success(Verdict(health, message: message))
            }
            return .failure(
                ScriptError(
                    .badReturn,
                    "\(hook.location): check returned \(self.runtime.describe(at: value)); expected \"up\", "
                        + "\"degraded\" or \"down\" (and an optional message)"))
        }
    }
}
