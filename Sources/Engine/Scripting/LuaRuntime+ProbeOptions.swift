import CLua
import FoundationEssentials
import SwiftASN1
import X509

// The per-URL options of the TCP, TLS and DNS probes: the form of tcp://, tls:// and dns:// URLs, the
// `tls = { ... }` table, and a dns:// URL's `expect` list of response codes.
extension LuaRuntime {
    /// Why a `tcp://`, `tls://` or `dns://` URL is malformed, in words, or nil when it is well formed.
    static func problem(withProbeURL url: String, scheme: String) -> String? {
        switch scheme {
        case "tcp", "tls":
            if case .failure(let error) = ProbeAddress.parse(url) {
                return "bad \(scheme):// URL \"\(url)\": \(error.message)"
            }
        case "dns":
            if case .failure(let error) = DNSQuery.parse(url) {
                return "bad dns:// URL \"\(url)\": \(error.message)"
            }
        default:
            return "unsupported scheme \"\(scheme)\" in \"\(RequestDescription.redacting(url))\" "
                + "(expected http, https, tcp, tls or dns)"
        }
        return nil
    }

    /// Reads `tls = { verify, ca_file, server_name, cert_expiry }` on top of the stack, for a tls:// or
    /// https:// URL; the roots of `ca_file` are read and parsed now, so a missing or broken file stops the
    /// load.
    func readTLSOptions(url: String, here: String, _ source: ScriptSource) throws(ScriptError) -> TLSOptions {
        let scheme = url.prefix { $0 != ":" }.lowercased()
        guard scheme == "tls" || scheme == "https" else {
            throw ScriptError(
                .configuration,
                here + "field 'tls' is for tls:// and https:// URLs only (this URL is \(scheme)://)")
        }
        guard lua_type(self.L, -1) == LUA_TTABLE else {
            throw ScriptError(
                .configuration,
                here + "field 'tls' must be a table such as { cert_expiry = 14 } (got \(self.describe(at: -1)))")
        }
        let table = lua_gettop(self.L)
        var options = TLSOptions()
        lua_pushnil(self.L)
        while lua_next(self.L, table) != 0 {
            defer { lua_settop(self.L, -2) }
            let key = self.string(at: -2) ?? self.describe(at: -2)
            func fail(_ expected: String) -> ScriptError {
                ScriptError(.configuration, here + "tls.\(key) must be \(expected) (got \(self.describe(at: -1)))")
            }
            switch key {
            case "verify":
                guard lua_type(self.L, -1) == LUA_TBOOLEAN else { throw fail("true or false") }
                options.verify = lua_toboolean(self.L, -1) != 0
            case "server_name":
                guard let name = self.string(at: -1), !name.isEmpty else { throw fail("a host name") }
                options.serverName = name
            case "cert_expiry":
                guard let days = self.number(at: -1), days.isFinite, days >= 0, days <= 3650 else {
                    throw fail("a number of days from 0 to 3650")
                }
                options.certExpiryDays = days
            case "ca_file":
                guard let path = self.string(at: -1), !path.isEmpty else { throw fail("a file name") }
                options.caFile = path
                options.roots = try Self.readRoots(path, scriptPath: source.path, here: here)
            default:
                let known = ["verify", "ca_file", "server_name", "cert_expiry"]
                let guess = known.first { editDistance($0, key) <= 2 }.map { "; did you mean '\($0)'?" } ?? ""
                throw ScriptError(
                    .configuration,
                    here + "unknown field 'tls.\(key)'\(guess) (known fields: \(known.joined(separator: ", ")))")
            }
        }
        return options
    }

    /// The PEM certificates of `path` (relative paths from the script's folder).
    static func readRoots(_ path: String, scriptPath: String, here: String) throws(ScriptError) -> [Certificate] {
        var full = path
        if !path.hasPrefix("/"), let slash = scriptPath.lastIndex(of: "/") {
            full = String(scriptPath[...slash]) + path
        }
        guard let data = FileManager.default.contents(atPath: full) else {
            throw ScriptError(
                .configuration, here + "tls.ca_file: cannot read \"\(full)\" (no such file, or not readable)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw ScriptError(
                .configuration,
                here + "tls.ca_file: \"\(full)\" is not PEM (expected -----BEGIN CERTIFICATE----- blocks)")
        }
        var roots: [Certificate] = []
        for (i, document) in documents.enumerated() where document.discriminator == "CERTIFICATE" {
            do {
                roots.append(try Certificate(pemDocument: document))
            } catch {
                throw ScriptError(
                    .configuration, here + "tls.ca_file: certificate \(i + 1) of \"\(full)\" does not parse as X.509")
            }
        }
        guard !roots.isEmpty else {
            throw ScriptError(.configuration, here + "tls.ca_file: \"\(full)\" holds no certificate")
        }
        return roots
    }

    /// A DNS response code name or a list of them (`"NOERROR"`, `{ "NOERROR", "NXDOMAIN" }`), upper-cased.
    func readResponseCodes() -> [String]? {
        func code(at index: Int32) -> String? {
            guard let text = self.string(at: index)?.uppercased(), DNSReply.rcodes.contains(text) else { return nil }
            return text
        }
        if let single = code(at: -1) { return [single] }
        guard lua_type(self.L, -1) == LUA_TTABLE else { return nil }
        let table = lua_gettop(self.L)
        let count = Int(lua_rawlen(self.L, table))
        guard count > 0 else { return nil }
        var codes: [String] = []
        for i in 1...count {
            lua_rawgeti(self.L, table, lua_Integer(i))
            defer { lua_settop(self.L, -2) }
            guard let c = code(at: -1) else { return nil }
            codes.append(c)
        }
        return codes
    }
}
