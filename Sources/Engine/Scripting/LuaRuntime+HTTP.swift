import CLua
import FoundationEssentials

// urlpoll.http: requests from inside hooks that suspend the hook's coroutine instead of blocking the state.
// The host function reads and checks the arguments, records a HookRequest and returns UP_YIELD; the C
// trampoline yields, ScriptHost sends the request off the Lua state and resumes the coroutine with the
// response table (or nil and the error), which become the function's results.
extension LuaRuntime {
    static let httpPrelude = """
        local request = ...
        local http = {}
        urlpoll.http = http

        function http.request(opts) return request(opts, nil, "request") end
        function http.get(url, opts) return request(opts, nil, "get", url) end
        function http.post(url, body, opts) return request(opts, nil, "post", url, body) end

        -- A session keeps the cookies its responses set (s.cookies) and sends them on its next requests.
        local session = {}
        session.__index = session
        \(wherePrelude)
        local function check(self, name)
          if type(self) ~= "table" or type(rawget(self, "cookies")) ~= "table" then
            error(where() .. "bad self to '" .. name .. "' (a session expected: write s:" .. name .. "(…), with a colon)", 0)
          end
        end
        function session:request(opts) check(self, "request") return request(opts, self.cookies, "request") end
        function session:get(url, opts) check(self, "get") return request(opts, self.cookies, "get", url) end
        function session:post(url, body, opts)
          check(self, "post")
          return request(opts, self.cookies, "post", url, body)
        end
        function http.session() return setmetatable({ cookies = {} }, session) end
        """

    /// The options `urlpoll.http.request` takes.
    static let httpOptions = ["method", "url", "headers", "body", "form", "timeout", "tls"]

    /// The fields of a request's `tls` option: a URL's, less `cert_expiry` (a request is not judged).
    static let httpTLSOptions = ["verify", "ca_file", "server_name"]

    func installHTTP() throws(ScriptError) {
        up_pushhostfn(self.L) { L in LuaRuntime.host(L) { runtime throws(HostError) in try runtime.hostHTTP() } }
        try self.run(source: Self.httpPrelude, name: "=urlpoll", nargs: 1)
    }

    /// `request(opts, cookies, function [, url [, body]])`, behind `urlpoll.http.*` and a session's methods.
    private func hostHTTP() throws(HostError) -> Int32 {
        let function = self.string(at: 3) ?? "request"
        guard let call = self.active, call.thread == self.L else {
            throw HostError(self.whyNoWaiting(function))
        }
        guard lua_isyieldable(self.L) != 0 else {
            throw HostError(
                "urlpoll.http.\(function) cannot wait here: it was called by a C function of Lua's library (a "
                    + "table.sort comparison, a string.gsub replacement, a __tostring metamethod…), which Lua cannot "
                    + "suspend; call it from the hook's own code")
        }
        guard call.requests < call.maximumRequests else {
            throw HostError(
                "urlpoll.http.\(function): this \(call.name) call has made \(call.maximumRequests.counted("request")), the most "
                    + "one hook call may make")
        }
        var request = try self.readHTTPRequest(function)
        if lua_type(self.L, 2) == LUA_TTABLE {
            request.cookies = self.readCookies(at: 2)
            lua_pushvalue(self.L, 2)
            request.session = luaL_ref(self.L, UP_REGISTRYINDEX)
        }
        var buffer = [CChar](repeating: 0, count: 256)
        up_wherebuf(self.L, &buffer, buffer.count)
        request.location = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        self.active?.requests += 1
        self.pendingRequest = request
        return UP_YIELD_CODE
    }

    /// Why `urlpoll.http` cannot suspend the code that called it, in words.
    private func whyNoWaiting(_ function: String) -> String {
        if self.active != nil {
            return "urlpoll.http.\(function) must be called from the hook itself, not from a coroutine the script "
                + "started"
        }
        switch self.phase {
        case "load":
            return "urlpoll.http.\(function) cannot be called while the script loads; make requests in check, "
                + "on_result, on_change or report"
        case "backoff":
            return "urlpoll.http.\(function) cannot be called from backoff, which must return its sleep at once; "
                + "make requests in check, on_result, on_change or report"
        default:
            return "urlpoll.http.\(function) cannot be called from \(self.phase); make requests in check, "
                + "on_result, on_change or report"
        }
    }

    /// Reads `request{…}`, `get(url [, opts])` or `post(url, body [, opts])` from the arguments
    /// `(opts, cookies, function, url, body)`.
    private func readHTTPRequest(_ function: String) throws(HostError) -> HookRequest {
        // Where each argument is in the script's call, for messages.
        let optionsArgument = function == "request" ? 1 : function == "get" ? 2 : 3
        func bad(_ argument: Int, _ words: String) -> HostError {
            HostError("bad argument #\(argument) to '\(function)' (\(words))")
        }
        var url: String?
        var method = function == "post" ? "POST" : "GET"
        var headers: [Header] = []
        var body: [UInt8]?
        var contentType: String?
        var timeout: Duration?
        var tls: TLSOptions?
        if function != "request" {
            guard let given = self.string(at: 4) else {
                throw bad(1, "URL string expected, got \(self.describe(at: 4))")
            }
            url = given
        }
        if function == "post" {
            do {
                (body, contentType) = try self.readBody(at: 5) ?? (nil, nil)
            } catch {
                throw bad(2, error.message)
            }
        }
        let optionsType = lua_type(self.L, 1)
        switch optionsType {
        case LUA_TNONE, LUA_TNIL:
            if function == "request" { throw bad(1, "table of options expected, got no value") }
        case LUA_TTABLE:
            lua_pushnil(self.L)
            while lua_next(self.L, 1) != 0 {
                defer { lua_settop(self.L, -2) }
                guard let key = self.string(at: -2), Self.httpOptions.contains(key) else {
                    let key = self.string(at: -2) ?? self.describe(at: -2)
                    let near = Self.httpOptions.min { editDistance($0, key) < editDistance($1, key) }
                    let hint = near.map { editDistance($0, key) <= 2 ? "; did you mean '\($0)'?" : "" } ?? ""
                    throw bad(
                        optionsArgument,
                        "unknown option '\(key)'\(hint) (known options: \(Self.httpOptions.joined(separator: ", ")))")
                }
                switch key {
                case "url":
                    guard let given = self.string(at: -1) else {
                        throw bad(optionsArgument, "option 'url' must be a string, got \(self.describe(at: -1))")
                    }
                    url = given
                case "method":
                    guard let given = self.string(at: -1), !given.isEmpty, Header(given, "").problem == nil else {
                        throw bad(optionsArgument, "option 'method' must be a method name such as \"GET\"")
                    }
                    method = given.uppercased()
                case "headers":
                    headers = try self.readHeaders(at: -1) { words throws(HostError) in
                        throw bad(optionsArgument, words)
                    }
                case "body":
                    do {
                        guard let read = try self.readBody(at: -1) else { break }
                        (body, contentType) = read
                    } catch {
                        throw bad(optionsArgument, "option 'body': \(error.message)")
                    }
                case "form":
                    guard lua_type(self.L, -1) == LUA_TTABLE else {
                        throw bad(optionsArgument, "option 'form' must be a table of names to strings")
                    }
                    guard let form = self.formEncoded(at: -1) else {
                        throw bad(optionsArgument, "option 'form' must map names to strings or numbers")
                    }
                    (body, contentType) = (Array(form.utf8), "application/x-www-form-urlencoded")
                case "timeout":
                    guard let seconds = self.number(at: -1), seconds >= 0.001, seconds <= 3600 else {
                        throw bad(
                            optionsArgument,
                            "option 'timeout' must be a number of seconds from 0.001 to 3600, got \(self.describe(at: -1))"
                        )
                    }
                    timeout = .seconds(seconds)
                case "tls":
                    tls = try self.readRequestTLS { words throws(HostError) in throw bad(optionsArgument, words) }
                default:
                    break
                }
            }
        default:
            throw bad(optionsArgument, "table of options expected, got \(self.typeName(at: 1))")
        }
        guard let url else { throw bad(optionsArgument, "option 'url' is missing") }
        guard RequestDescription(url: url, headers: []) != nil else {
            let argument = function == "request" ? optionsArgument : 1
            if let problem = LuaRuntime.problem(withURL: url), problem.hasPrefix("the port") {
                throw bad(argument, problem)
            }
            throw bad(argument, "an http or https URL expected, got \"\(RequestDescription.redacting(url))\"")
        }
        if let contentType, !headers.contains(where: { $0.name.lowercased() == "content-type" }) {
            headers.append(Header("Content-Type", contentType))
        }
        return HookRequest(method: method, url: url, headers: headers, body: body, timeout: timeout, tls: tls)
    }

    /// Reads a request's `tls = { verify, ca_file, server_name }` on top of the stack (as a URL's, without
    /// `cert_expiry`); `ca_file` is read from the script's folder when relative, once per file.
    private func readRequestTLS(_ fail: (String) throws(HostError) -> Void) throws(HostError) -> TLSOptions {
        guard lua_type(self.L, -1) == LUA_TTABLE else {
            try fail("option 'tls' must be a table such as { verify = false }, got \(self.describe(at: -1))")
            return TLSOptions()
        }
        let table = lua_gettop(self.L)
        var options = TLSOptions()
        lua_pushnil(self.L)
        while lua_next(self.L, table) != 0 {
            defer { lua_settop(self.L, -2) }
            let key = self.string(at: -2) ?? self.describe(at: -2)
            func wrong(_ expected: String) -> String { "tls.\(key) must be \(expected), got \(self.describe(at: -1))" }
            switch key {
            case "verify":
                guard lua_type(self.L, -1) == LUA_TBOOLEAN else {
                    try fail(wrong("true or false"))
                    continue
                }
                options.verify = lua_toboolean(self.L, -1) != 0
            case "server_name":
                guard let name = self.string(at: -1), !name.isEmpty else {
                    try fail(wrong("a host name"))
                    continue
                }
                options.serverName = name
            case "ca_file":
                guard let path = self.string(at: -1), !path.isEmpty else {
                    try fail(wrong("a file name"))
                    continue
                }
                options.caFile = path
                if let roots = self.hookRoots[path] {
                    options.roots = roots
                } else {
                    do {
                        options.roots = try Self.readRoots(path, scriptPath: self.path, here: "")
                    } catch {
                        try fail(error.message)
                    }
                    self.hookRoots[path] = options.roots
                }
            default:
                let known = Self.httpTLSOptions
                let guess = known.first { editDistance($0, key) <= 2 }.map { "; did you mean '\($0)'?" } ?? ""
                try fail("unknown option 'tls.\(key)'\(guess) (known options: \(known.joined(separator: ", ")))")
            }
        }
        return options
    }

    /// A body argument: a string as it is, or a table as JSON; nil for nil.
    private func readBody(at index: Int32) throws(HostError) -> ([UInt8], String?)? {
        switch lua_type(self.L, index) {
        case LUA_TNONE, LUA_TNIL:
            return nil
        case LUA_TSTRING:
            return (self.bytes(at: index) ?? [], nil)
        case LUA_TTABLE:
            switch self.encodeJSON(at: index) {
            case .success(let text): return (Array(text.utf8), "application/json")
            case .failure(let error):
                throw HostError("a table body is sent as JSON, and this one cannot be: \(error.message)")
            }
        default:
            throw HostError("string or table (sent as JSON) expected, got \(self.typeName(at: index))")
        }
    }

    /// A table of header names to strings (numbers written as numbers), each checked (RFC 9110 §5).
    private func readHeaders(at index: Int32, _ fail: (String) throws(HostError) -> Void) throws(HostError) -> [Header]
    {
        guard lua_type(self.L, index) == LUA_TTABLE else {
            try fail("option 'headers' must be a table of header names to strings")
            return []
        }
        let table = lua_absindex(self.L, index)
        var headers: [Header] = []
        lua_pushnil(self.L)
        while lua_next(self.L, table) != 0 {
            defer { lua_settop(self.L, -2) }
            guard let name = self.string(at: -2),
                let value = self.string(at: -1) ?? self.number(at: -1).map(formatSeconds)
            else {
                try fail("option 'headers' must be a table of header names to strings")
                continue
            }
            let header = Header(name, value)
            if let problem = header.problem { try fail("headers: \(problem)") }
            headers.append(header)
        }
        return headers.sorted { $0.name < $1.name }
    }

    /// `application/x-www-form-urlencoded` (WHATWG URL §5.2) of a table of names to strings or numbers,
    /// sorted by name so the body is the same on every call; nil when a name or value is of another type.
    private func formEncoded(at index: Int32) -> String? {
        let table = lua_absindex(self.L, index)
        var pairs: [(String, String)] = []
        lua_pushnil(self.L)
        while lua_next(self.L, table) != 0 {
            defer { lua_settop(self.L, -2) }
            guard let name = self.string(at: -2),
                let value = self.string(at: -1) ?? self.number(at: -1).map(formatSeconds)
            else {
                lua_settop(self.L, -2)
                return nil
            }
            pairs.append((name, value))
        }
        func encode(_ text: String) -> String {
            var out = ""
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "*"), UInt8(ascii: "-"), UInt8(ascii: "."),
                    UInt8(ascii: "_"):
                    out.unicodeScalars.append(Unicode.Scalar(byte))
                case UInt8(ascii: " "):
                    out += "+"
                default:
                    out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
                }
            }
            return out
        }
        return pairs.sorted { $0.0 < $1.0 }.map { encode($0.0) + "=" + encode($0.1) }.joined(separator: "&")
    }

    // MARK: Results

    /// Pushes the response table `{ code, status, headers, body, latency, url, timings [, tls] }`.
    func push(_ response: HookResponse) {
        self.beginRecord(fields: 8)
        self.set(.code, response.code)
        self.set(.status, response.reason.isEmpty ? "\(response.code)" : "\(response.code) \(response.reason)")
        self.set(.headers) { self.push(headers: response.headers) }
        self.set(.body) { self.push(bytes: response.body) }
        self.set(.latency, response.latency.seconds)
        self.set(.url, response.url)
        self.set(.timings) { self.push(response.timings) }
        if let tls = response.tls { self.set(.tls) { self.push(tls, now: Date().timeIntervalSince1970) } }
        self.endRecord()
    }

    /// Pushes header fields as a table keyed by lower-case name; repeated fields joined with ", ".
    func push(headers: [Header]) {
        var merged: [String: String] = [:]
        for header in headers {
            let name = header.name.lowercased()
            merged[name] = merged[name].map { $0 + ", " + header.value } ?? header.value
        }
        lua_createtable(self.L, 0, Int32(merged.count))
        for (name, value) in merged {
            self.push(name)
            self.push(value)
            lua_rawset(self.L, -3)
        }
    }

    // MARK: Cookies

    /// The session's cookies, from its `cookies` table (an array of `{ name, value, domain, path,
    /// host_only, secure, http_only, expires }`); entries that are not such records are left out.
    private func readCookies(at index: Int32) -> CookieJar {
        let table = lua_absindex(self.L, index)
        var jar = CookieJar()
        let count = Int(lua_rawlen(self.L, table))
        guard count > 0 else { return jar }
        for i in 1...count {
            lua_rawgeti(self.L, table, lua_Integer(i))
            defer { lua_settop(self.L, -2) }
            guard lua_type(self.L, -1) == LUA_TTABLE else { continue }
            let record = lua_gettop(self.L)
            func field(_ name: String) -> Int32 {
                self.push(name)
                return lua_rawget(self.L, record)
            }
            _ = field("name")
            let name = self.string(at: -1)
            _ = field("value")
            let value = self.string(at: -1)
            _ = field("domain")
            let domain = self.string(at: -1)
            _ = field("path")
            let path = self.string(at: -1)
            let hostOnly = field("host_only") == LUA_TBOOLEAN && lua_toboolean(self.L, -1) != 0
            let secure = field("secure") == LUA_TBOOLEAN && lua_toboolean(self.L, -1) != 0
            let httpOnly = field("http_only") == LUA_TBOOLEAN && lua_toboolean(self.L, -1) != 0
            _ = field("expires")
            let expires = self.number(at: -1)
            lua_settop(self.L, record)
            guard let name, let value, let domain, let path else { continue }
            jar.cookies.append(
                CookieJar.Cookie(
                    name: name, value: value, domain: domain.lowercased(), hostOnly: hostOnly, path: path,
                    secure: secure, httpOnly: httpOnly, expires: expires))
        }
        return jar
    }

    /// Writes `jar` back into the session's `cookies` table (kept by registry reference `ref` while the
    /// request was in flight), and lets go of the reference.
    func storeCookies(_ jar: CookieJar?, inSessionRef ref: Int32) {
        defer { luaL_unref(self.main, UP_REGISTRYINDEX, ref) }
        guard let jar else { return }
        lua_rawgeti(self.L, UP_REGISTRYINDEX, lua_Integer(ref))
        defer { lua_settop(self.L, -2) }
        guard lua_type(self.L, -1) == LUA_TTABLE else { return }
        let old = Int(lua_rawlen(self.L, -1))
        for (i, cookie) in jar.cookies.enumerated() {
            lua_createtable(self.L, 0, 8)
            func set(_ name: String, _ push: () -> Void) {
                self.push(name)
                push()
                lua_rawset(self.L, -3)
            }
            set("name") { self.push(cookie.name) }
            set("value") { self.push(cookie.value) }
            set("domain") { self.push(cookie.domain) }
            set("path") { self.push(cookie.path) }
            set("host_only") { lua_pushboolean(self.L, cookie.hostOnly ? 1 : 0) }
            set("secure") { lua_pushboolean(self.L, cookie.secure ? 1 : 0) }
            set("http_only") { lua_pushboolean(self.L, cookie.httpOnly ? 1 : 0) }
            if let expires = cookie.expires { set("expires") { lua_pushnumber(self.L, expires) } }
            lua_rawseti(self.L, -2, lua_Integer(i + 1))
        }
        if old > jar.cookies.count {
            for i in (jar.cookies.count + 1)...old {
                lua_pushnil(self.L)
                lua_rawseti(self.L, -2, lua_Integer(i))
            }
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        self.count >= width ? self : String(repeating: "0", count: width - self.count) + self
    }
}
