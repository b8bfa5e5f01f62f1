extension String {
    /// The most bytes of a check message or error text the `--data` store keeps per change, and `/status`
    /// and the page show per URL (1 KiB): a `check` returning a response body as its message (up to 1 MiB)
    /// made every change, and `/status`, megabytes.
    public static let detailLimit = 1_024

    /// This string when it takes at most `limit` bytes of UTF-8; otherwise its longest prefix of whole
    /// Unicode scalars that fits in `limit` bytes with "…" (3 bytes) after it.
    public func limited(toUTF8Bytes limit: Int) -> String {
        guard self.utf8.count > limit else { return self }
        var kept = String.UnicodeScalarView()
        var bytes = 0
        let room = max(0, limit - 3)
        for scalar in self.unicodeScalars {
            let size = UTF8.width(scalar)
            guard bytes + size <= room else { break }
            kept.append(scalar)
            bytes += size
        }
        return String(kept) + "…"
    }
}
