/// HistoryKeyIndex finds the ``HistoryKey`` of the URL `urlpoll.history(url, …)` names: the URL as written
/// (`s.raw_url`), its `name` (`s.name`), or the URL as printed (`s.url`) when no other URL prints alike.
///
/// Built from the loaded script's targets the first time a hook calls `urlpoll.history`, so a script that
/// never calls it pays nothing.
struct HistoryKeyIndex {
    private var byRawURL: [String: HistoryKey] = [:]
    /// A name → the keys of the URLs named so (more than one when names are shared: names need not be
    /// unique).
    private var byName: [String: [HistoryKey]] = [:]
    /// The printed URL → its keys (more than one when URLs differ only by their password).
    private var byPrintedURL: [String: [HistoryKey]] = [:]

    init(_ targets: [Target]) {
        for target in targets {
            let key = target.historyKey
            self.byRawURL[target.url] = key
            self.byName[target.name, default: []].append(key)
            self.byPrintedURL[target.displayURL, default: []].append(key)
        }
    }

    /// What went wrong finding a key, in words for the Lua error.
    struct Ambiguous: Error {
        let count: Int
        /// Whether the URLs share the argument as their `name` (else as their printed URL).
        var byName = false
    }

    /// The key of the URL `argument` names: as written, as printed when that is one URL, or by name. A URL
    /// the script no longer lists is looked up as printed (its password replaced), ordinal 1.
    /// - Throws: ``Ambiguous`` when `argument` is a printed URL several URLs print as (the first one's
    ///   default name is that printed URL too, so it is not taken as a name), or a name several URLs share
    ///   that is neither a URL as written nor as printed (those win over names).
    func key(for argument: String) throws(Ambiguous) -> HistoryKey {
        try self.listedKey(for: argument) ?? HistoryKey(url: RequestDescription.redacting(argument))
    }

    /// The key of the script's URL `argument` names (as written, as printed when that is one URL, or by
    /// name), or nil when it names none of the script's URLs.
    /// - Throws: ``Ambiguous`` as ``key(for:)``.
    func listedKey(for argument: String) throws(Ambiguous) -> HistoryKey? {
        if let key = self.byRawURL[argument] { return key }
        if let keys = self.byPrintedURL[argument] {
            guard keys.count == 1 else { throw Ambiguous(count: keys.count) }
            return keys[0]
        }
        guard let keys = self.byName[argument] else { return nil }
        guard keys.count == 1 else { throw Ambiguous(count: keys.count, byName: true) }
        return keys[0]
    }
}
