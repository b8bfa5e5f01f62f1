import CLua
import FoundationEssentials

// Reading the settings, the `urls` list and the hooks out of a loaded script. Every problem is a
// ScriptError that names the setting or the entry, with the script line where it can be found.
extension LuaRuntime {
    /// Loads the script at `path` (or `text`, when the script has no file) and reads everything it
    /// declares.
    func loadConfig(path: String, text: String? = nil) throws(ScriptError) -> ScriptConfig {
        if let text {
            try self.load(source: text, name: path)
        } else {
            try self.load(path: path)
        }
        let source = ScriptSource(path: path, text: text)
        // Reading the config pushes a handful of values at a time; make sure the stack has room.
        guard lua_checkstack(self.L, 20) != 0 else { throw ScriptError(.memory, "the Lua stack cannot grow") }
        let settings = try self.readSettings(source)
        let backoff = try self.readHook("backoff", source)
        let report = try self.readHook("report", source)
        let check = try self.readHook("check", source)
        let onChange = try self.readHook("on_change", source)
        let onResult = try self.readHook("on_result", source)
        var targets = try self.readURLs(source)
        for i in targets.indices {
            let checked = targets[i].check != nil || check != nil
            targets[i].captureBody = checked
            targets[i].captureHeaders = checked || targets[i].backoff != nil || backoff != nil
        }
        var config = ScriptConfig(
            path: path, settings: settings, targets: targets, backoff: backoff, report: report, check: check,
            onChange: onChange, onResult: onResult)
        config.modules = try self.readModules(source)
        config.warnings = self.misspelledGlobals(source)
        self.historyTargets = targets
        self.historyKeys = nil
        return config
    }

    // MARK: Settings

    private func readSettings(_ source: ScriptSource) throws(ScriptError) -> Settings {
        var settings = Settings()
        if let n = try self.setting("pollers", source, range: 1...10_000, integer: true) {
            settings.pollers = Int(n)
        }
        if let s = try self.setting("poll_interval", source, range: 0...86_400) {
            settings.pollInterval = .seconds(checked: s)
        }
        if let s = try self.setting("status_interval", source, range: 0.001...86_400) {
            settings.statusInterval = .seconds(checked: s)
        }
        if let s = try self.setting("error_backoff", source, range: 0...86_400) {
            settings.errorBackoff = .seconds(checked: s)
        }
        if let s = try self.setting("timeout", source, range: 0.001...3_600) {
            settings.timeout = .seconds(checked: s)
        }
        self.pushGlobal("method")
        defer { lua_settop(self.L, -2) }
        if lua_type(self.L, -1) != LUA_TNIL {
            guard let method = self.string(at: -1).flatMap(Self.method(_:)) else {
                throw ScriptError(
                    .configuration,
                    source.locate(assigning: "method")
                        + "setting 'method' must be one of \(Self.methods.joined(separator: ", ")) (got \(self.describe(at: -1)))"
                )
            }
            settings.method = method
        }
        settings.listen = try self.readListen(source)
        settings.metrics = try self.readMetricSet(source)
        if let title = try self.readTitle(source) { settings.title = title }
        settings.data = try self.readData(source)
        settings.store = try self.readStore(source)
        if settings.store != nil, settings.data != nil {
            // As `run --store` with `--data`: the shared store keeps each URL's state and history itself.
            throw ScriptError(
                .configuration,
                source.locate(assigning: "store")
                    + "settings 'store' and 'data' do not go together: the store keeps each URL's state, changes and rollups for every instance; remove 'data'"
            )
        }
        return settings
    }

    /// Reads `store`, the shared schedule's PostgreSQL database: a `postgresql://user@host:port/database` URL
    /// without a password (``PostgresLocation``).
    private func readStore(_ source: ScriptSource) throws(ScriptError) -> String? {
        self.pushGlobal("store")
        defer { lua_settop(self.L, -2) }
        if lua_type(self.L, -1) == LUA_TNIL { return nil }
        guard let store = self.string(at: -1) else {
            throw ScriptError(
                .configuration,
                source.locate(assigning: "store")
                    + "setting 'store' must be a postgresql://user@host:port/database URL (got \(self.describe(at: -1)))"
            )
        }
        do {
            _ = try PostgresLocation(store, environment: [:])
        } catch {
            throw ScriptError(
                .configuration, source.locate(assigning: "store") + "setting 'store': \(error.description)")
        }
        return store
    }

    /// Reads `data`, the history store's folder: a non-empty string; a relative path is from the script's
    /// folder, as `tls.ca_file` (a script given as text: from the working directory).
    private func readData(_ source: ScriptSource) throws(ScriptError) -> String? {
        self.pushGlobal("data")
        defer { lua_settop(self.L, -2) }
        if lua_type(self.L, -1) == LUA_TNIL { return nil }
        guard let data = self.string(at: -1), !data.isEmpty else {
            throw ScriptError(
                .configuration,
                source.locate(assigning: "data")
                    + "setting 'data' must be the path of a folder for the history store, such as \"/var/lib/urlpoll\" (got \(self.describe(at: -1)))"
            )
        }
        if !data.hasPrefix("/"), source.text == nil, let slash = source.path.lastIndex(of: "/") {
            return String(source.path[...slash]) + data
        }
        return data
    }

    /// The most bytes of UTF-8 in a URL's `name` or `group`, and in the `title` setting: each is shown whole
    /// in reports, `/status` and on the status page, and a name in every change `/status` lists (a 1 MiB
    /// `name` made `/status` megabytes).
    static let nameLimit = 200

    /// Reads `title`, the status page's title: a string of at most ``nameLimit`` bytes.
    private func readTitle(_ source: ScriptSource) throws(ScriptError) -> String? {
        self.pushGlobal("title")
        defer { lua_settop(self.L, -2) }
        if lua_type(self.L, -1) == LUA_TNIL { return nil }
        if let problem = self.textProblem(at: -1) {
            throw ScriptError(
                .configuration,
                source.locate(assigning: "title") + "setting 'title' must be printable UTF-8 text (got \(problem))")
        }
        guard let title = self.string(at: -1), title.utf8.count <= Self.nameLimit, !Self.isBlank(title) else {
            throw ScriptError(
                .configuration,
                source.locate(assigning: "title")
                    + "setting 'title' must be a string of at most \(Self.nameLimit) bytes, not only spaces, the status page's title (got \(self.describe(at: -1)))"
            )
        }
        return title
    }

    /// What keeps the string at `index` from being shown as text (a `name`, `group` or `title`: on the status
    /// page, in `/status`, reports and logs), in words with the byte where it starts (from 1), or nil (also
    /// for a value that is not a string): a NUL byte, invalid UTF-8 (RFC 3629), or a control character
    /// (Unicode's general category Cc: U+0001–U+001F, U+007F–U+009F; HTML allows none of them in text but
    /// tab and line breaks, WHATWG HTML §13.1.4).
    func textProblem(at index: Int32) -> String? {
        guard let bytes = self.bytes(at: index) else { return nil }
        // Most names are printable ASCII: checked byte by byte, without decoding (100,000 names at a load).
        if bytes.allSatisfy({ (0x20...0x7E).contains($0) }) { return nil }
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                let scalar = Unicode.UTF8.decode(encoded)
                if scalar.value == 0 { return "a NUL byte at byte \(offset + 1)" }
                if scalar.properties.generalCategory == .control {
                    return "a control character, U+\(Self.hex(scalar.value, digits: 4)), at byte \(offset + 1)"
                }
                offset += encoded.count
            case .error:
                return "invalid UTF-8 at byte \(offset + 1): 0x\(Self.hex(UInt32(bytes[offset]), digits: 2))"
            case .emptyInput:
                return nil
            }
        }
    }

    /// `value` in upper-case hexadecimal, at least `digits` long.
    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    /// Whether `text` shows as nothing: empty, or only whitespace and invisible characters (Unicode's
    /// default-ignorable code points, such as U+200B ZERO WIDTH SPACE and U+3164 HANGUL FILLER, format
    /// characters, and U+2800 BRAILLE PATTERN BLANK).
    static func isBlank(_ text: String) -> Bool {
        // A printable ASCII character other than a space shows: most names have one first.
        if text.utf8.contains(where: { $0 > 0x20 && $0 < 0x7F }) { return false }
        return text.unicodeScalars.allSatisfy {
            $0.properties.isWhitespace || $0.properties.isDefaultIgnorableCodePoint
                || $0.properties.generalCategory == .format || $0.value == 0x2800
        }
    }

    /// Reads `metrics = "default" | "full"`.
    private func readMetricSet(_ source: ScriptSource) throws(ScriptError) -> MetricSet {
        self.pushGlobal("metrics")
        defer { lua_settop(self.L, -2) }
        if lua_type(self.L, -1) == LUA_TNIL { return .default }
        guard lua_type(self.L, -1) == LUA_TSTRING, let text = self.string(at: -1), let set = MetricSet(rawValue: text)
        else {
            throw ScriptError(
                .configuration,
                source.locate(assigning: "metrics")
                    + "setting 'metrics' must be \"default\" or \"full\" (got \(self.describe(at: -1)))")
        }
        return set
    }

    private func readListen(_ source: ScriptSource) throws(ScriptError) -> ListenAddress? {
        self.pushGlobal("listen")
        defer { lua_settop(self.L, -2) }
        if lua_type(self.L, -1) == LUA_TNIL { return nil }
        guard lua_type(self.L, -1) == LUA_TSTRING, let text = self.string(at: -1) else {
            throw ScriptError(
                .configuration,
                source.locate(assigning: "listen")
                    + "setting 'listen' must be a string HOST:PORT such as \"127.0.0.1:9464\" (got \(self.describe(at: -1)))"
            )
        }
        do {
            return try ListenAddress(parsing: text)
        } catch {
            throw ScriptError(.configuration, source.locate(assigning: "listen") + "setting 'listen': \(error)")
        }
    }

    // MARK: Modules

    /// Reads `modules = { http_2xx = { method = "GET", expect = "2xx" } }`.
    private func readModules(_ source: ScriptSource) throws(ScriptError) -> [String: ProbeModule] {
        let top = lua_gettop(self.L)
        defer { lua_settop(self.L, top) }
        switch self.pushGlobal("modules") {
        case LUA_TNIL: return [:]
        case LUA_TTABLE: break
        default:
            throw ScriptError(
                .configuration,
                source.locate(assigning: "modules")
                    + "'modules' must be a table of module names to option tables (got \(self.typeName(at: -1)))")
        }
        let table = lua_gettop(self.L)
        var modules: [String: ProbeModule] = [:]
        lua_pushnil(self.L)
        while lua_next(self.L, table) != 0 {
            defer { lua_settop(self.L, -2) }
            guard lua_type(self.L, -2) == LUA_TSTRING, let name = self.string(at: -2) else {
                throw ScriptError(
                    .configuration,
                    source.locate(assigning: "modules")
                        + "modules: names must be strings (got \(self.describe(at: -2)))")
            }
            let here = source.locate(containing: name) + "modules.\(name): "
            guard lua_type(self.L, -1) == LUA_TTABLE else {
                throw ScriptError(.configuration, here + "must be a table of options (got \(self.describe(at: -1)))")
            }
            modules[name] = try self.readModule(name: name, here: here, source)
        }
        return modules
    }

    /// Reads the module options table on top of the stack.
    private func readModule(name: String, here: String, _ source: ScriptSource) throws(ScriptError) -> ProbeModule {
        let table = lua_gettop(self.L)
        var module = ProbeModule(name: name)
        lua_pushnil(self.L)
        while lua_next(self.L, table) != 0 {
            defer { lua_settop(self.L, -2) }
            guard let key = self.string(at: -2) else {
                throw ScriptError(.configuration, here + "field names must be strings (got \(self.describe(at: -2)))")
            }
            func fail(_ expected: String) -> ScriptError {
                ScriptError(.configuration, here + "field '\(key)' must be \(expected) (got \(self.describe(at: -1)))")
            }
            switch key {
            case "method":
                guard let method = self.string(at: -1).flatMap(Self.method(_:)) else {
                    throw fail("one of \(Self.methods.joined(separator: ", "))")
                }
                module.method = method
            case "timeout":
                guard let s = self.number(at: -1), s.isFinite, s > 0, s <= 3_600 else {
                    throw fail("a number of seconds from 0.001 to 3600")
                }
                module.timeout = .seconds(checked: s)
            case "headers":
                guard let headers = self.readHeaders() else { throw fail("a table of header names to string values") }
                if let problem = headers.lazy.compactMap(\.problem).first {
                    throw ScriptError(.configuration, here + "field 'headers': " + problem)
                }
                module.headers = headers
            case "expect":
                guard let expect = self.readExpect() else {
                    throw fail("a status code, a range such as \"2xx\" or \"200-299\", or a list of them")
                }
                module.expect = expect
            case "tls":
                // As blackbox_exporter's `tls_config`: for the module's tls:// and https:// targets.
                module.tls = try self.readTLSOptions(url: "tls://", here: here, source)
            default:
                let known = ["method", "timeout", "headers", "expect", "tls"]
                throw ScriptError(
                    .configuration, here + "unknown field '\(key)' (known fields: \(known.joined(separator: ", ")))")
            }
        }
        return module
    }

    /// Reads a numeric global setting, or `nil` when the script leaves it unset.
    private func setting(
        _ name: String, _ source: ScriptSource, range: ClosedRange<Double>, integer: Bool = false
    ) throws(ScriptError) -> Double? {
        self.pushGlobal(name)
        defer { lua_settop(self.L, -2) }
        if lua_type(self.L, -1) == LUA_TNIL { return nil }
        let value = integer ? self.integer(at: -1).map(Double.init) : self.number(at: -1)
        guard let value, value.isFinite, range.contains(value) else {
            let what = integer ? "an integer" : "a number of seconds"
            throw ScriptError(
                .configuration,
                source.locate(assigning: name)
                    + "setting '\(name)' must be \(what) from \(formatSeconds(range.lowerBound)) to "
                    + "\(formatSeconds(range.upperBound)) (got \(self.describe(at: -1)))")
        }
        return value
    }

    static let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]

    static func method(_ text: String) -> String? {
        let upper = text.uppercased()
        return Self.methods.contains(upper) ? upper : nil
    }

    // MARK: Hooks

    /// Resolves a global hook once, at load: a function, or nil when the script does not define it.
    private func readHook(_ name: String, _ source: ScriptSource) throws(ScriptError) -> HookRef? {
        let type = self.pushGlobal(name)
        defer { lua_settop(self.L, -2) }
        switch type {
        case LUA_TNIL: return nil
        case LUA_TFUNCTION: return self.reference(functionAt: -1)
        default:
            throw ScriptError(
                .configuration,
                source.locate(assigning: name)
                    + "'\(name)' must be a function (got \(self.typeName(at: -1)))")
        }
    }

    // MARK: URLs

    private func readURLs(_ source: ScriptSource) throws(ScriptError) -> [Target] {
        let top = lua_gettop(self.L)
        defer { lua_settop(self.L, top) }
        let kind = self.pushGlobal("urls")
        let isFunction = kind == LUA_TFUNCTION
        switch kind {
        case LUA_TTABLE:
            break
        case LUA_TFUNCTION:
            if let error = self.call(nargs: 0, nresults: 1, budget: self.limits.loadInstructions, what: "urls") {
                throw error
            }
            guard lua_type(self.L, -1) == LUA_TTABLE else {
                throw ScriptError(
                    .configuration,
                    source.locate(assigning: "urls")
                        + "the 'urls' function must return a table of URLs (got \(self.typeName(at: -1)))")
            }
        case LUA_TNIL:
            throw ScriptError(
                .configuration, "\(source.path): 'urls' is not set; add urls = { \"http://127.0.0.1:8080/\" }")
        default:
            throw ScriptError(
                .configuration,
                source.locate(assigning: "urls")
                    + "'urls' must be a table or a function (got \(self.typeName(at: -1)))")
        }
        let list = lua_gettop(self.L)
        let count = Int(lua_rawlen(self.L, list))
        var targets: [Target] = []
        targets.reserveCapacity(count)
        var seen: [String: Int] = [:]
        seen.reserveCapacity(count)
        for index in 1..<(count + 1) {
            lua_rawgeti(self.L, list, lua_Integer(index))
            let target = try self.readEntry(index: index, source)
            lua_settop(self.L, -2)
            if let first = seen[target.url] {
                throw ScriptError(
                    .configuration,
                    source.locate(containing: target.url, occurrence: 2)
                        + "urls[\(index)]: duplicate URL \"\(target.displayURL)\" (also urls[\(first)])")
            }
            seen[target.url] = index
            targets.append(target)
        }
        if targets.isEmpty {
            // A script with nothing to poll is refused (as Gatus refuses a configuration without endpoints):
            // more often than not the list was written as a map, or names a variable that is not set.
            throw ScriptError(
                .configuration, source.locate(assigning: "urls") + self.emptyURLsWords(at: list, function: isFunction))
        }
        Self.numberNamesSharedByCredentials(&targets)
        return targets
    }

    /// Why the `urls` table at `list` gave no URL, and what to write instead: it has keys but no list part
    /// (`urls = { api = "http://…" }`), or it is empty (`{}`, or a list of variables that are not set).
    private func emptyURLsWords(at list: Int32, function: Bool) -> String {
        let what = function ? "the 'urls' function returned no URLs" : "'urls' is empty"
        lua_pushnil(self.L)
        if lua_next(self.L, list) != 0 {
            let key = self.string(at: -2).map { "\"\($0)\"" } ?? self.describe(at: -2)
            lua_settop(self.L, -3)
            return what
                + ": its entries have keys (such as \(key)), and urls is a list: write urls = { \"http://127.0.0.1:8080/\", { url = \"http://127.0.0.1:8080/api\", name = \"api\" } }"
        }
        return what
            + ": list at least one URL to poll, as urls = { \"http://127.0.0.1:8080/\" } (a variable that is not set adds nothing to the list)"
    }

    /// URLs that differ only by their credentials (`http://a:p1@h/x`, `http://a:p2@h/x`, `http://h/x`) are
    /// printed alike (the password is `xxxxx`) and exported alike (`/metrics` drops the user information),
    /// so each one after the first gets its number among them as its ``Target/ordinal`` (the key of its rows
    /// in the `--data` store), and, when its `name` is the default, in its name: `http://a:xxxxx@h/x (2)`.
    /// A script's own `name` is left as it is.
    static func numberNamesSharedByCredentials(_ targets: inout [Target]) {
        // Only a URL with user information can print like another: most lists have none.
        guard targets.contains(where: { RequestDescription.mayHaveUserInfo($0.url) }) else { return }
        var seen: [String: Int] = [:]
        for index in targets.indices {
            let bare = ProbeMetrics.redacted(targets[index].url)
            let number = (seen[bare] ?? 0) + 1
            seen[bare] = number
            targets[index].ordinal = number
            if number > 1, targets[index].name == targets[index].displayURL {
                targets[index].name = "\(targets[index].displayURL) (\(number))"
            }
        }
    }

    /// Reads the entry on top of the stack: a URL string or a table of per-URL options.
    private func readEntry(index: Int, _ source: ScriptSource) throws(ScriptError) -> Target {
        let entry = "urls[\(index)]"
        if let url = self.string(at: -1) {
            try Self.validate(url: url, entry: entry, source)
            return Target(url: url)
        }
        guard lua_type(self.L, -1) == LUA_TTABLE else {
            throw ScriptError(
                .configuration,
                "\(source.path): \(entry): expected a URL string or a table (got \(self.describe(at: -1)))")
        }
        let table = lua_gettop(self.L)
        // The URL first, so later messages can point at its line.
        lua_pushstring(self.L, "url")
        lua_rawget(self.L, table)
        guard let url = self.string(at: -1) else {
            let got = self.describe(at: -1)
            throw ScriptError(.configuration, "\(source.path): \(entry): field 'url' must be a string (got \(got))")
        }
        lua_settop(self.L, -2)
        try Self.validate(url: url, entry: entry, source)
        var target = Target(url: url)
        // Only an error needs the entry's line, so it is looked up then: finding it for every entry read
        // the whole file once per entry, quadratic in the length of the list.
        func here() -> String { source.locate(containing: url) + "\(entry) (\(RequestDescription.redacting(url))): " }

        lua_pushnil(self.L)
        while lua_next(self.L, table) != 0 {
            defer { lua_settop(self.L, -2) }
            guard let key = self.string(at: -2) else {
                throw ScriptError(.configuration, here() + "field names must be strings (got \(self.describe(at: -2)))")
            }
            func fail(_ expected: String) -> ScriptError {
                ScriptError(
                    .configuration, here() + "field '\(key)' must be \(expected) (got \(self.describe(at: -1)))")
            }
            switch key {
            case "url":
                continue
            case "name", "group":
                // Shown as text on the status page, in `/status` and reports: a NUL or invalid UTF-8 would be
                // U+FFFD there, and only spaces a row or a section without a title.
                if let problem = self.textProblem(at: -1) {
                    throw ScriptError(
                        .configuration, here() + "field '\(key)' must be printable UTF-8 text (got \(problem))")
                }
                if key == "name" {
                    guard let name = self.string(at: -1), !Self.isBlank(name), name.utf8.count <= Self.nameLimit else {
                        throw fail(
                            "a string of 1 to \(Self.nameLimit) bytes, not only spaces, the URL's name in reports, /status and on the status page"
                        )
                    }
                    target.name = name
                } else {
                    guard let group = self.string(at: -1), !Self.isBlank(group), group.utf8.count <= Self.nameLimit
                    else {
                        throw fail(
                            "a string of 1 to \(Self.nameLimit) bytes, not only spaces, the URL's group on the status page"
                        )
                    }
                    target.group = group
                }
            case "method":
                guard let method = self.string(at: -1).flatMap(Self.method(_:)) else {
                    throw fail("one of \(Self.methods.joined(separator: ", "))")
                }
                target.method = method
            case "timeout":
                guard let s = self.number(at: -1), s.isFinite, s > 0, s <= 3_600 else {
                    throw fail("a number of seconds from 0.001 to 3600")
                }
                target.timeout = .seconds(checked: s)
            case "interval":
                guard let s = self.number(at: -1), s.isFinite, s >= 0, s <= 86_400 else {
                    throw fail("a number of seconds from 0 to 86400")
                }
                target.interval = .seconds(checked: s)
            case "body":
                guard lua_type(self.L, -1) == LUA_TSTRING, let body = self.string(at: -1) else {
                    throw fail("a string")
                }
                target.body = body
            case "headers":
                guard let headers = self.readHeaders() else {
                    throw fail("a table of header names to string values")
                }
                if let problem = headers.lazy.compactMap(\.problem).first {
                    throw ScriptError(.configuration, here() + "field 'headers': " + problem)
                }
                target.headers = headers
            case "expect" where Scheme(url) == .dns:
                guard let rcodes = self.readResponseCodes() else {
                    throw fail("a DNS response code such as \"NOERROR\" or \"NXDOMAIN\", or a list of them")
                }
                target.rcodes = rcodes
            case "expect":
                guard let expect = self.readExpect() else {
                    throw fail("a status code, a range such as \"2xx\" or \"200-299\", or a list of them")
                }
                target.expect = expect
            case "backoff":
                guard lua_type(self.L, -1) == LUA_TFUNCTION else { throw fail("a function") }
                target.backoff = self.reference(functionAt: -1)
            case "check":
                guard lua_type(self.L, -1) == LUA_TFUNCTION else { throw fail("a function") }
                target.check = self.reference(functionAt: -1)
            case "labels":
                target.labels = try self.readLabels(here)
            case "send":
                guard Scheme(url) == .tcp else {
                    throw ScriptError(.configuration, here() + "field 'send' is for tcp:// URLs only")
                }
                guard lua_type(self.L, -1) == LUA_TSTRING, let send = self.bytes(at: -1) else { throw fail("a string") }
                target.send = send
            case "tls":
                target.tls = try self.readTLSOptions(url: url, here: here(), source)
            default:
                let known = [
                    "url", "name", "method", "timeout", "interval", "headers", "body", "expect", "backoff", "check",
                    "labels", "send", "tls", "group",
                ]
                let guess = known.first { editDistance($0, key) <= 2 }.map { "; did you mean '\($0)'?" } ?? ""
                throw ScriptError(
                    .configuration,
                    here() + "unknown field '\(key)'\(guess) (known fields: \(known.joined(separator: ", ")))")
            }
        }
        return target
    }

    /// Reads a URL's `labels = { team = "db" }` table (on top of the stack), checking each name against
    /// the Prometheus data model and the limits of ``MetricLabel``.
    private func readLabels(_ here: () -> String) throws(ScriptError) -> [MetricLabel] {
        guard lua_type(self.L, -1) == LUA_TTABLE else {
            throw ScriptError(
                .configuration,
                here() + "field 'labels' must be a table of label names to strings (got \(self.describe(at: -1)))")
        }
        let table = lua_gettop(self.L)
        var labels: [MetricLabel] = []
        lua_pushnil(self.L)
        while lua_next(self.L, table) != 0 {
            defer { lua_settop(self.L, -2) }
            guard lua_type(self.L, -2) == LUA_TSTRING, let name = self.string(at: -2) else {
                throw ScriptError(
                    .configuration, here() + "labels: names must be strings (got \(self.describe(at: -2)))")
            }
            if let problem = MetricLabel.problem(withName: name) {
                throw ScriptError(.configuration, here() + "labels: '\(name)' \(problem)")
            }
            let value: String
            if lua_type(self.L, -1) == LUA_TSTRING, let s = self.string(at: -1) {
                value = s
            } else if lua_type(self.L, -1) == LUA_TNUMBER, let n = self.number(at: -1) {
                value = formatSeconds(n)
            } else {
                throw ScriptError(
                    .configuration,
                    here() + "labels: '\(name)' must be a string or a number (got \(self.describe(at: -1)))")
            }
            guard value.utf8.count <= MetricLabel.maxValueBytes else {
                throw ScriptError(
                    .configuration,
                    here() + "labels: the value of '\(name)' is \(value.utf8.count) bytes; the most is "
                        + "\(MetricLabel.maxValueBytes)")
            }
            labels.append(MetricLabel(name, value))
        }
        guard labels.count <= MetricLabel.maxCount else {
            throw ScriptError(
                .configuration,
                here() + "labels: \(labels.count) labels; a URL may have at most \(MetricLabel.maxCount), "
                    + "as each adds to every series Prometheus keeps")
        }
        return labels.sorted { $0.name < $1.name }
    }

    private func readHeaders() -> [Header]? {
        guard lua_type(self.L, -1) == LUA_TTABLE else { return nil }
        let table = lua_gettop(self.L)
        var headers: [Header] = []
        lua_pushnil(self.L)
        while lua_next(self.L, table) != 0 {
            defer { lua_settop(self.L, -2) }
            guard let name = self.string(at: -2), !name.isEmpty else {
                lua_settop(self.L, table)
                return nil
            }
            let value: String
            if let s = self.string(at: -1) {
                value = s
            } else if let n = self.number(at: -1) {
                value = formatSeconds(n)
            } else {
                lua_settop(self.L, table)
                return nil
            }
            headers.append(Header(name, value))
        }
        return headers.sorted { $0.name < $1.name }
    }

    private func readExpect() -> ExpectedStatus? {
        if let range = self.statusRange(at: -1) { return ExpectedStatus(ranges: [range]) }
        guard lua_type(self.L, -1) == LUA_TTABLE else { return nil }
        let table = lua_gettop(self.L)
        let count = Int(lua_rawlen(self.L, table))
        guard count > 0 else { return nil }
        var ranges: [ClosedRange<Int>] = []
        for i in 1...count {
            lua_rawgeti(self.L, table, lua_Integer(i))
            defer { lua_settop(self.L, -2) }
            guard let range = self.statusRange(at: -1) else { return nil }
            ranges.append(range)
        }
        return ExpectedStatus(ranges: ranges)
    }

    /// A status code (`204`), a class (`"2xx"`) or a range (`"200-299"`).
    private func statusRange(at index: Int32) -> ClosedRange<Int>? {
        let valid = 100...599
        if let code = self.integer(at: index) {
            return valid.contains(code) ? code...code : nil
        }
        guard let text = self.string(at: index)?.lowercased() else { return nil }
        if text.count == 3, text.hasSuffix("xx"), let digit = Int(text.prefix(1)), (1...5).contains(digit) {
            return (digit * 100)...(digit * 100 + 99)
        }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count == 2, let low = Int(parts[0]), let high = Int(parts[1]), valid.contains(low),
            valid.contains(high), low <= high
        {
            return low...high
        }
        if let code = Int(text), valid.contains(code) { return code...code }
        return nil
    }

    /// Checks that `url` is an absolute http or https URL with a host, without spaces or control characters.
    /// (Cheap on purpose: a script may list 100,000 URLs; the HTTP client parses each fully when it polls.)
    static func validate(url: String, entry: String, _ source: ScriptSource) throws(ScriptError) {
        if let problem = Self.problem(withURL: url) {
            throw ScriptError(.configuration, source.locate(containing: url) + "\(entry): " + problem)
        }
    }

    /// Why `url` is not an absolute http or https URL with a host, or nil when it is.
    static func problem(withURL url: String) -> String? {
        let utf8 = url.utf8
        guard let colon = utf8.firstIndex(of: UInt8(ascii: ":")),
            utf8[colon...].starts(with: "://".utf8),
            !utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F })
        else { return "not a URL: \"\(RequestDescription.redacting(url))\"" }
        let scheme = String(decoding: utf8[..<colon], as: UTF8.self).lowercased()
        guard scheme == "http" || scheme == "https" else {
            return Self.problem(withProbeURL: url, scheme: scheme)
        }
        let rest = utf8[utf8.index(colon, offsetBy: 3)...]
        let authority = rest.prefix { $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }
        let host =
            authority.lastIndex(of: UInt8(ascii: "@")).map { authority[authority.index(after: $0)...] } ?? authority
        guard !host.isEmpty, host.first != UInt8(ascii: ":") else {
            return "no host in \"\(RequestDescription.redacting(url))\""
        }
        // The port, after the host (after "]" for an IPv6 literal): empty (the scheme's default) or 1…65535.
        let afterHost = host.first == UInt8(ascii: "[") ? host.lastIndex(of: UInt8(ascii: "]")) : host.startIndex
        if let afterHost, let colon = host[afterHost...].lastIndex(of: UInt8(ascii: ":")) {
            let digits = host[host.index(after: colon)...]
            if !digits.isEmpty {
                guard digits.count <= 5, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                    let port = Int(String(decoding: digits, as: UTF8.self)), (1...65_535).contains(port)
                else {
                    return "the port must be a number from 1 to 65535 in \"\(RequestDescription.redacting(url))\""
                }
            }
        }
        return nil
    }
}
