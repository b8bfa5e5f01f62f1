import CLua

// The tables `res.tls` and `res.answers` (and `s.tls`, `s.answers` in report, on_change and on_result), built
// from what the TLS and DNS probes saw. Built only for those URLs, so plain string keys are cheap enough.
extension LuaRuntime {
    /// Pushes `{ version, cipher, subject, issuer, sans, not_before, not_after, days_left, chain_not_after }`;
    /// times in seconds since the epoch, `days_left` counted from `now`.
    func push(_ tls: TLSFacts, now: Double) {
        lua_createtable(self.L, 0, 9)
        self.field("version") { self.push(tls.version) }
        if let cipher = tls.cipher { self.field("cipher") { self.push(cipher) } }
        self.field("subject") { self.push(tls.subject) }
        self.field("issuer") { self.push(tls.issuer) }
        self.field("sans") {
            lua_createtable(self.L, Int32(tls.sans.count), 0)
            for (i, name) in tls.sans.enumerated() {
                self.push(name)
                lua_rawseti(self.L, -2, lua_Integer(i + 1))
            }
        }
        self.field("not_before") { lua_pushnumber(self.L, tls.notBefore) }
        self.field("not_after") { lua_pushnumber(self.L, tls.notAfter) }
        self.field("days_left") { lua_pushinteger(self.L, lua_Integer(tls.daysLeft(at: now))) }
        self.field("chain_not_after") { lua_pushnumber(self.L, tls.chainNotAfter) }
    }

    /// Pushes a list of `{ name, type, ttl, data }`.
    func push(_ answers: [DNSFacts.Answer]) {
        lua_createtable(self.L, Int32(answers.count), 0)
        for (i, answer) in answers.enumerated() {
            lua_createtable(self.L, 0, 4)
            self.field("name") { self.push(answer.name) }
            self.field("type") { self.push(answer.type) }
            self.field("ttl") { lua_pushinteger(self.L, lua_Integer(answer.ttl)) }
            self.field("data") { self.push(answer.data) }
            lua_rawseti(self.L, -2, lua_Integer(i + 1))
        }
    }

    /// Sets `table[name]` on the table on top of the stack to the value `push` leaves.
    private func field(_ name: String, _ push: () -> Void) {
        self.push(name)
        push()
        lua_rawset(self.L, -3)
    }
}
