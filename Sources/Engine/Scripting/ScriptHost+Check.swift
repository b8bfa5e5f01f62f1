import CLua
import FoundationEssentials
import Logging

extension ScriptHost: Checker {
    public func check(_ target: Target, _ result: ProbeResult) async -> Verdict? {
        guard let hook = target.check ?? self.config.check else { return nil }
        let status: String
        let code: Int?
        let ok: Bool
        switch result.outcome {
        case .response(let c, let reason):
            (status, code, ok) = (reason.isEmpty ? "\(c)" : "\(c) \(reason)", c, target.expect.contains(c))
        case .reply(let reply):
            (status, code, ok) = (reply.status, nil, reply.health == .up)
        case .failure:
            return nil
        }
        let verdict = await self.runHook(
            hook, name: "check", timeout: self.settings.timeout(for: target), nargs: 1, nresults: 2,
            pushArgs: {
                let lua = self.runtime
                lua.beginRecord(fields: 15)
                lua.setURLAndName(target.displayURL, raw: target.url, target.name)
                lua.set(.status, status)
                lua.set(.code, code)
                lua.set(.ok, ok)
                lua.set(.latency, result.latency.seconds)
                lua.set(.headers) { lua.push(headers: result.headers) }
                lua.set(.body) { lua.push(bytes: result.body ?? []) }
                if let tls = result.tls {
                    lua.set(.tls) { lua.push(tls, now: Double(Date().timeIntervalSince1970)) }
                }
                if let dns = result.dns {
                    lua.set(.rcode, dns.rcode)
                    lua.set(.answers) { lua.push(dns.answers) }
                }
                if let timings = result.timings { lua.set(.timings) { lua.push(timings) } }
                if let http = result.http { lua.set(.http) { lua.push(http) } }
                lua.endRecord()
            },
            read: { first in self.readVerdict(hook, at: first) })
        self.forwardAlerts()
        switch verdict.flatMap({ $0 }) {
        case .success(let verdict):
            return verdict
        case .failure(let error) where error.kind == .stopped:
            return nil
        case .failure(let error) where error.kind == .deadline:
            // The poll is judged down: a check that cannot finish says nothing good about the service.
            self.logFailure(error, hook: "check", url: target.displayURL, fallback: "judged down")
            return Verdict(.down, message: error.message)
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
