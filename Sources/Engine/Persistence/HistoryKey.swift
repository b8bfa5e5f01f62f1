/// HistoryKey names one URL's rows in the `--data` store: the URL as printed (its password replaced by
/// `xxxxx`, ``Target/displayURL``) and its number among the script's URLs that print alike
/// (``Target/ordinal``, 1 for the first and for a URL no other prints like).
///
/// The printed URL alone is not unique: `http://probe:A@h/x` and `http://probe:B@h/x` both print as
/// `http://probe:xxxxx@h/x`; the URL as written is unique but holds the password, which must never reach
/// the file. The pair is unique per URL (the loader numbers URLs that print alike in script order, as it
/// numbers their default names, `… (2)`) and holds no password.
public struct HistoryKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The URL as printed, no password.
    public var url: String
    /// Its number among URLs that print alike, from 1.
    public var ordinal: Int

    public init(url: String, ordinal: Int = 1) {
        self.url = url
        self.ordinal = ordinal
    }

    /// The printed URL, with ` (n)` after it from the second URL that prints alike on.
    public var description: String { self.ordinal == 1 ? self.url : "\(self.url) (\(self.ordinal))" }

    public static func < (lhs: HistoryKey, rhs: HistoryKey) -> Bool {
        (lhs.url, lhs.ordinal) < (rhs.url, rhs.ordinal)
    }
}

extension HistoryKey {
    /// Pairs the states the store saved (``HistoryStore/savedStates()``) with the URLs of the script now
    /// loaded, by ``HistoryKey`` (the printed URL and its ordinal among URLs that print alike), and returns
    /// them keyed as the monitor keys them (``State/rawURL`` set to the target's URL as written). Saved URLs
    /// the script no longer lists are left out.
    public static func match(_ saved: [State], to targets: [Target]) -> [State] {
        var byKey: [HistoryKey: State] = [:]
        byKey.reserveCapacity(saved.count)
        for state in saved { byKey[state.historyKey] = state }
        var matched: [State] = []
        matched.reserveCapacity(min(saved.count, targets.count))
        for target in targets {
            guard var state = byKey[target.historyKey] else { continue }
            state.rawURL = target.url
            matched.append(state)
        }
        return matched
    }
}
