import CLua

/// FieldKey names a field of the tables the engine hands to hooks (`report`, `on_change`, `on_result`,
/// `backoff`). The names are interned in Lua once, so filling a table costs no string lookup per field.
enum FieldKey: Int32, CaseIterable {
    case url = 1, name, status, code, ok, state, error, detail, errorCount, latency, polls, since, checkedAt
    case lateness, index, count, defaultSleep, lastSleep, interval, headers, body, tls, rcode, answers, rawURL
    case timings, http, replayed

    /// The field's name in Lua.
    var text: String {
        switch self {
        case .url: "url"
        case .name: "name"
        case .status: "status"
        case .code: "code"
        case .ok: "ok"
        case .state: "state"
        case .error: "error"
        case .detail: "detail"
        case .errorCount: "error_count"
        case .latency: "latency"
        case .polls: "polls"
        case .since: "since"
        case .checkedAt: "checked_at"
        case .lateness: "lateness"
        case .index: "index"
        case .count: "count"
        case .defaultSleep: "default"
        case .lastSleep: "last_sleep"
        case .interval: "interval"
        case .headers: "headers"
        case .body: "body"
        case .tls: "tls"
        case .rcode: "rcode"
        case .answers: "answers"
        case .rawURL: "raw_url"
        case .timings: "timings"
        case .http: "http"
        case .replayed: "replayed"
        }
    }
}

/// Records: tables of named fields built for a hook's argument.
///
/// `beginRecord` leaves the new table and the interned keys on the stack (`[table, keys]`); each `set` adds
/// one field with `lua_rawset`; `endRecord` leaves the table alone on top.
extension LuaRuntime {
    /// Interns the field names; called once, when the state is made.
    func internFieldKeys() -> Int32 {
        lua_createtable(self.L, Int32(FieldKey.allCases.count), 0)
        for key in FieldKey.allCases {
            self.push(key.text)
            lua_rawseti(self.L, -2, lua_Integer(key.rawValue))
        }
        return luaL_ref(self.L, UP_REGISTRYINDEX)
    }

    func beginRecord(fields: Int32) {
        lua_createtable(self.L, 0, fields)
        lua_rawgeti(self.L, UP_REGISTRYINDEX, lua_Integer(self.fieldKeys))
    }

    /// Like ``beginRecord(fields:)``, for the table already on top of the stack.
    func beginUpdate() {
        lua_rawgeti(self.L, UP_REGISTRYINDEX, lua_Integer(self.fieldKeys))
    }

    func endRecord() {
        lua_settop(self.L, -2)
    }

    /// Pushes the name of `key` on top of `[table, keys]`.
    private func pushKey(_ key: FieldKey) {
        lua_rawgeti(self.L, -1, lua_Integer(key.rawValue))
    }

    func set(_ key: FieldKey, _ value: String?) {
        guard let value else { return }
        self.pushKey(key)
        self.push(value)
        lua_rawset(self.L, -4)
    }

    func set(_ key: FieldKey, _ value: Double) {
        self.pushKey(key)
        lua_pushnumber(self.L, value)
        lua_rawset(self.L, -4)
    }

    func set(_ key: FieldKey, _ value: Int?) {
        guard let value else { return }
        self.pushKey(key)
        lua_pushinteger(self.L, lua_Integer(value))
        lua_rawset(self.L, -4)
    }

    func set(_ key: FieldKey, _ value: Bool) {
        self.pushKey(key)
        lua_pushboolean(self.L, value ? 1 : 0)
        lua_rawset(self.L, -4)
    }

    /// Rewrites the phases of `timings` that differ from `old` in the record's `timings` table, in place;
    /// false when the record has no such table (the caller then sets a new one).
    func update(timings: PhaseTimings, from old: PhaseTimings) -> Bool {
        self.pushKey(.timings)
        guard lua_rawget(self.L, -3) == LUA_TTABLE else {
            up_pop(self.L, 1)
            return false
        }
        func phase(_ name: String, _ new: Duration, _ old: Duration) {
            guard new != old else { return }
            self.push(name)
            lua_pushnumber(self.L, new.seconds)
            lua_rawset(self.L, -3)
        }
        phase("resolve", timings.resolve, old.resolve)
        phase("connect", timings.connect, old.connect)
        phase("tls", timings.tls, old.tls)
        phase("processing", timings.processing, old.processing)
        phase("transfer", timings.transfer, old.transfer)
        up_pop(self.L, 1)
        return true
    }

    /// Sets `key` to nil.
    func clear(_ key: FieldKey) {
        self.pushKey(key)
        lua_pushnil(self.L)
        lua_rawset(self.L, -4)
    }

    /// Sets `key` to the value `push` leaves on top of the stack.
    func set(_ key: FieldKey, pushing push: () -> Void) {
        self.pushKey(key)
        push()
        lua_rawset(self.L, -4)
    }

    /// Sets `url` (as printed: `displayURL`), `raw_url` (as written, password included) and `name`, pushing
    /// each text once when they are the same (the usual case: no password, no name).
    func setURLAndName(_ displayURL: String, raw rawURL: String, _ name: String) {
        self.push(displayURL)  // [table, keys, url]
        lua_rawgeti(self.L, -2, lua_Integer(FieldKey.url.rawValue))
        lua_pushvalue(self.L, -2)
        lua_rawset(self.L, -5)
        lua_rawgeti(self.L, -2, lua_Integer(FieldKey.rawURL.rawValue))
        if rawURL == displayURL { lua_pushvalue(self.L, -2) } else { self.push(rawURL) }
        lua_rawset(self.L, -5)
        lua_rawgeti(self.L, -2, lua_Integer(FieldKey.name.rawValue))
        if name == displayURL { lua_pushvalue(self.L, -2) } else { self.push(name) }
        lua_rawset(self.L, -5)
        lua_settop(self.L, -2)
    }
}
