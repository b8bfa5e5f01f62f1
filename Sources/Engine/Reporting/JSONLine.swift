/// JSONLine builds one JSON object with its keys in the order added.
struct JSONLine {
    private var text_ = "{"

    var text: String { self.text_ + "}" }

    private mutating func key(_ key: String) {
        if self.text_.count > 1 { self.text_ += "," }
        LuaRuntime.appendJSONString(key, to: &self.text_)
        self.text_ += ":"
    }

    mutating func add(_ key: String, _ value: String?) {
        self.key(key)
        if let value { LuaRuntime.appendJSONString(value, to: &self.text_) } else { self.text_ += "null" }
    }

    mutating func add(_ key: String, _ value: Double?) {
        self.key(key)
        guard let value, value.isFinite else {
            self.text_ += "null"
            return
        }
        self.text_ += value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    /// Adds a value already written as JSON: a nested object (``JSONLine/text``) or an array.
    mutating func add(_ key: String, json value: String) {
        self.key(key)
        self.text_ += value
    }

    /// Adds an array of strings.
    mutating func add(_ key: String, _ values: [String]) {
        self.key(key)
        self.text_ += "["
        for (i, value) in values.enumerated() {
            if i > 0 { self.text_ += "," }
            LuaRuntime.appendJSONString(value, to: &self.text_)
        }
        self.text_ += "]"
    }

    mutating func add(_ key: String, _ value: Bool) {
        self.key(key)
        self.text_ += value ? "true" : "false"
    }
}
