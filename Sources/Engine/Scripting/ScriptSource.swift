import FoundationEssentials

/// ScriptSource finds lines in the script's text, read (once) only when an error needs a line number.
final class ScriptSource {
    let path: String
    let text: String?

    init(path: String, text: String?) {
        self.path = path
        self.text = text
    }

    private lazy var lines: [Substring]? = {
        if let text = self.text { return text.split(separator: "\n", omittingEmptySubsequences: false) }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: self.path)) else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
    }()

    /// `path:line: ` for the `occurrence`-th line that contains `text` as a quoted string literal (so
    /// `http://a/1` is not found in `"http://a/10"`), else the `occurrence`-th line that contains it at all,
    /// or `path: ` when none does.
    func locate(containing text: String, occurrence: Int = 1) -> String {
        for needles in [["\"\(text)\"", "'\(text)'"], [text]] {
            var seen = 0
            for (i, line) in (self.lines ?? []).enumerated() where needles.contains(where: { line.contains($0) }) {
                seen += 1
                if seen == occurrence { return "\(self.path):\(i + 1): " }
            }
        }
        return "\(self.path): "
    }

    /// `path:line: ` for the first line that assigns `name` at the top level, or `path: `.
    func locate(assigning name: String) -> String {
        for (i, line) in (self.lines ?? []).enumerated() {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard trimmed.hasPrefix(name) else { continue }
            let rest = trimmed.dropFirst(name.count).drop { $0 == " " || $0 == "\t" }
            if rest.hasPrefix("=") && !rest.hasPrefix("==") { return "\(self.path):\(i + 1): " }
        }
        for (i, line) in (self.lines ?? []).enumerated() where line.contains("function \(name)(") {
            return "\(self.path):\(i + 1): "
        }
        return "\(self.path): "
    }
}
