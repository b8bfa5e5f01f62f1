import CLua

// The tables `res.tls`, `res.answers`, `res.timings` and `res.http` (and the same on `s` in report, on_change
// and on_result), built from what the TLS, DNS and HTTP probes saw. Plain string keys: a few fields each.
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

    /// Pushes `{ resolve, connect, tls, processing, transfer }`, in seconds (``PhaseTimings``).
    func push(_ timings: PhaseTimings) {
        lua_createtable(self.L, 0, 5)
        self.field("resolve") { lua_pushnumber(self.L, timings.resolve.seconds) }
        self.field("connect") { lua_pushnumber(self.L, timings.connect.seconds) }
        self.field("tls") { lua_pushnumber(self.L, timings.tls.seconds) }
        self.field("processing") { lua_pushnumber(self.L, timings.processing.seconds) }
        self.field("transfer") { lua_pushnumber(self.L, timings.transfer.seconds) }
    }

    /// Pushes `{ version, content_length, body_length, redirects, ssl, ip_protocol }` (``HTTPFacts``);
    /// `content_length` and `ip_protocol` are nil when unknown.
    func push(_ http: HTTPFacts) {
        lua_createtable(self.L, 0, 6)
        self.field("version") { lua_pushnumber(self.L, http.version) }
        if let length = http.contentLength {
            self.field("content_length") { lua_pushinteger(self.L, lua_Integer(length)) }
        }
        self.field("body_length") { lua_pushinteger(self.L, lua_Integer(http.bodyLength)) }
        self.field("redirects") { lua_pushinteger(self.L, lua_Integer(http.redirects)) }
        self.field("ssl") { lua_pushboolean(self.L, http.ssl ? 1 : 0) }
        if let ip = http.ipProtocol { self.field("ip_protocol") { lua_pushinteger(self.L, lua_Integer(ip)) } }
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
