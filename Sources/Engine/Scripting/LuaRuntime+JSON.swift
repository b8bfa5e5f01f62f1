import CLua
import FoundationEssentials

// urlpoll.json.encode and urlpoll.json.decode, in Swift: they read Lua values with raw access only and
// push results without running any Lua code, so they cannot raise; errors go back to the trampoline.
extension LuaRuntime {
    /// Encodes the value at `index` as JSON. Tables whose keys are exactly 1...n encode as arrays, other
    /// tables as objects (keys must be strings or numbers); an empty table is `{}`.
    func encodeJSON(at index: Int32) -> Result<String, JSONError> {
        var out = ""
        if let error = self.encodeJSON(at: lua_absindex(self.L, index), depth: 0, into: &out) {
            return .failure(error)
        }
        return .success(out)
    }

    struct JSONError: Error {
        let message: String
    }

    private func encodeJSON(at index: Int32, depth: Int, into out: inout String) -> JSONError? {
        guard depth < 64 else { return JSONError(message: "nesting deeper than 64 (a table that contains itself?)") }
        // Each level holds a key and a value on the stack: make room, as a C function must.
        guard lua_checkstack(self.L, 4) != 0 else { return JSONError(message: "too deeply nested") }
        switch lua_type(self.L, index) {
        case LUA_TNIL, LUA_TNONE:
            out += "null"
        case LUA_TBOOLEAN:
            out += lua_toboolean(self.L, index) != 0 ? "true" : "false"
        case LUA_TNUMBER:
            if lua_isinteger(self.L, index) != 0 {
                out += String(lua_tointegerx(self.L, index, nil))
            } else {
                let number = lua_tonumberx(self.L, index, nil)
                guard number.isFinite else { return JSONError(message: "cannot encode \(number) as JSON") }
                out += number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
            }
        case LUA_TSTRING:
            Self.appendJSONString(self.string(at: index) ?? "", to: &out)
        case LUA_TTABLE:
            return self.encodeJSONTable(at: index, depth: depth, into: &out)
        default:
            return JSONError(message: "cannot encode a \(self.typeName(at: index)) as JSON")
        }
        return nil
    }

    private func encodeJSONTable(at index: Int32, depth: Int, into out: inout String) -> JSONError? {
        let length = Int(lua_rawlen(self.L, index))
        var count = 0
        var arrayLike = true
        lua_pushnil(self.L)
        while lua_next(self.L, index) != 0 {
            count += 1
            if arrayLike {
                let key = self.integer(at: -2)
                if lua_type(self.L, -2) != LUA_TNUMBER || key == nil || key! < 1 || key! > length { arrayLike = false }
            }
            lua_settop(self.L, -2)
        }
        if count > 0 && arrayLike && count == length {
            out += "["
            for i in 1...length {
                if i > 1 { out += "," }
                lua_rawgeti(self.L, index, lua_Integer(i))
                defer { lua_settop(self.L, -2) }
                if let error = self.encodeJSON(at: lua_gettop(self.L), depth: depth + 1, into: &out) { return error }
            }
            out += "]"
            return nil
        }
        // Objects: keys sorted, so output is stable.
        var members: [(key: String, value: String)] = []
        lua_pushnil(self.L)
        while lua_next(self.L, index) != 0 {
            let key: String
            if let string = self.string(at: -2) {
                key = string
            } else if let number = self.number(at: -2) {
                key = formatSeconds(number)
            } else {
                let type = self.typeName(at: -2)
                lua_settop(self.L, -3)
                return JSONError(message: "cannot encode a table with a \(type) key as JSON")
            }
            var value = ""
            if let error = self.encodeJSON(at: lua_gettop(self.L), depth: depth + 1, into: &value) {
                lua_settop(self.L, -3)
                return error
            }
            members.append((key, value))
            lua_settop(self.L, -2)
        }
        out += "{"
        for (i, member) in members.sorted(by: { $0.key < $1.key }).enumerated() {
            if i > 0 { out += "," }
            Self.appendJSONString(member.key, to: &out)
            out += ":" + member.value
        }
        out += "}"
        return nil
    }

    static func appendJSONString(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// Decodes JSON text and pushes the value: objects and arrays become tables, `null` becomes nil.
    func pushDecodedJSON(_ text: [UInt8]) -> JSONError? {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(text))
        } catch let DecodingError.dataCorrupted(context) {
            let reason = (context.underlyingError as? CustomStringConvertible)?.description ?? context.debugDescription
            return JSONError(message: "invalid JSON: \(reason)")
        } catch {
            return JSONError(message: "invalid JSON")
        }
        return self.push(value, depth: 0) ? nil : JSONError(message: "too deeply nested")
    }

    /// Pushes `value`; false when the Lua stack cannot grow deep enough.
    private func push(_ value: JSONValue, depth: Int) -> Bool {
        guard depth < 512, lua_checkstack(self.L, 3) != 0 else { return false }
        switch value {
        case .null: lua_pushnil(self.L)
        case .bool(let b): lua_pushboolean(self.L, b ? 1 : 0)
        case .integer(let i): lua_pushinteger(self.L, lua_Integer(i))
        case .number(let d): lua_pushnumber(self.L, d)
        case .string(let s): self.push(s)
        case .array(let items):
            lua_createtable(self.L, Int32(items.count), 0)
            for (i, item) in items.enumerated() {
                guard self.push(item, depth: depth + 1) else { return false }
                lua_rawseti(self.L, -2, lua_Integer(i + 1))
            }
        case .object(let members):
            lua_createtable(self.L, 0, Int32(members.count))
            for (key, item) in members {
                self.push(key)
                guard self.push(item, depth: depth + 1) else { return false }
                lua_rawset(self.L, -3)
            }
        }
        return true
    }
}

/// Any JSON value.
enum JSONValue: Decodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int64.self) {
            self = .integer(i)
        } else if let d = try? container.decode(Double.self) {
            self = .number(d)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}
