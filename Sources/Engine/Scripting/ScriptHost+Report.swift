import CLua
import Logging

extension ScriptHost: Reporter {
    public func report(_ states: [State]) async {
        guard let hook = self.config.report else { return }
        // Kept tables cost Lua memory (and the collector lets garbage grow in proportion): only a script with
        // few enough URLs keeps them (``ReportTables``).
        let keeps = self.config.targets.count <= ReportTables.kept(memoryLimit: self.runtime.limits.memory)
        for (i, state) in states.enumerated() {
            // Started in two steps, so a call that makes no request costs no suspension.
            let result: Result<Void, ScriptError>
            switch self.startHook(
                hook, name: "report", nargs: 1,
                pushArgs: {
                    if keeps {
                        self.pushReportState(state, index: i + 1, count: states.count)
                    } else {
                        self.pushState(state, index: i + 1, count: states.count)
                    }
                },
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

    /// Pushes `state`'s table for `report`: the URL's table from the tick before, its changed fields
    /// rewritten, or, on the URL's first report, a new one, kept for the next tick (``ReportTables``).
    func pushReportState(_ state: State, index: Int, count: Int) {
        let lua = self.runtime
        let L = lua.L
        let tables: Int32
        if let ref = self.reportTables.ref {
            tables = ref
        } else {
            lua_createtable(L, 0, 0)
            tables = luaL_ref(L, UP_REGISTRYINDEX)
            self.reportTables.ref = tables
        }
        lua_rawgeti(L, UP_REGISTRYINDEX, lua_Integer(tables))  // [tables]
        // URLs come in the same order tick after tick: the slot at `index` is usually this URL's.
        let slot: Int32?
        if index <= self.reportTables.shown.count, self.reportTables.shown[index - 1].state.rawURL == state.rawURL {
            slot = Int32(index)
        } else {
            slot = self.reportTables.slots[state.rawURL]
        }
        if let slot {
            if lua_rawgeti(L, -1, lua_Integer(slot)) == LUA_TTABLE {
                up_remove(L, -2)  // [s]
                let shown = self.reportTables.shown[Int(slot) - 1]
                lua.beginUpdate()
                self.update(from: shown.state, to: state)
                if shown.index != index { lua.set(.index, index) }
                if shown.count != count { lua.set(.count, count) }
                lua.endRecord()
                self.reportTables.shown[Int(slot) - 1] = (state, index, count)
                return
            }
            up_pop(L, 1)
        }
        // The URL's first report: a new table, kept in the next free slot.
        let new = slot ?? Int32(self.reportTables.shown.count + 1)
        self.pushState(state, index: index, count: count)  // [tables, s]
        lua_pushvalue(L, -1)
        lua_rawseti(L, -3, lua_Integer(new))
        up_remove(L, -2)  // [s]
        if Int(new) > self.reportTables.shown.count {
            self.reportTables.slots[state.rawURL] = new
            self.reportTables.shown.append((state, index, count))
        } else {
            self.reportTables.shown[Int(new) - 1] = (state, index, count)
        }
    }

    /// Rewrites the fields of the report table on top of `[s, keys]` whose values differ between `old`, what
    /// it holds, and `new`. `url` and `raw_url` are the slot's own and never change.
    private func update(from old: State, to new: State) {
        // Not polled since the last tick: nothing to compare.
        guard !new.isIdentical(to: old) else { return }
        let lua = self.runtime
        if new.name != old.name { lua.set(.name, new.name) }
        if new.status != old.status { lua.set(.status, new.status) }
        if new.code != old.code {
            if let code = new.code { lua.set(.code, code) } else { lua.clear(.code) }
        }
        if new.health != old.health {
            lua.set(.ok, new.ok)
            lua.set(.state, new.health.rawValue)
        }
        if new.error != old.error {
            if let error = new.error { lua.set(.error, error) } else { lua.clear(.error) }
        }
        if new.detail != old.detail {
            if let detail = new.detail { lua.set(.detail, detail) } else { lua.clear(.detail) }
        }
        if new.errorCount != old.errorCount { lua.set(.errorCount, new.errorCount) }
        if new.latency != old.latency { lua.set(.latency, new.latency.seconds) }
        if new.polls != old.polls { lua.set(.polls, new.polls) }
        if new.since != old.since { lua.set(.since, new.since) }
        if new.checkedAt != old.checkedAt { lua.set(.checkedAt, new.checkedAt) }
        if new.lateness != old.lateness { lua.set(.lateness, new.lateness.seconds) }
        // `days_left` counts from `checked_at`.
        if new.tls != old.tls || (new.tls != nil && new.checkedAt != old.checkedAt) {
            if let tls = new.tls { lua.set(.tls) { lua.push(tls, now: new.checkedAt) } } else { lua.clear(.tls) }
        }
        if new.dns != old.dns {
            if let dns = new.dns {
                lua.set(.rcode, dns.rcode)
                lua.set(.answers) { lua.push(dns.answers) }
            } else {
                lua.clear(.rcode)
                lua.clear(.answers)
            }
        }
        if new.timings != old.timings {
            if let timings = new.timings {
                // Most polls change only their phases' times: the table is kept, its numbers rewritten.
                if let previous = old.timings, lua.update(timings: timings, from: previous) {
                } else {
                    lua.set(.timings) { lua.push(timings) }
                }
            } else {
                lua.clear(.timings)
            }
        }
        if new.http != old.http {
            if let http = new.http { lua.set(.http) { lua.push(http) } } else { lua.clear(.http) }
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
        if state.replayed { lua.set(.replayed, true) }
        lua.endRecord()
    }
}
