/// TextReporter prints the seed's block: `Current state:` then one ` URL STATUS` line per URL.
///
/// After the status, a line says what the status alone does not: the health and its reason when the URL is
/// degraded, or down for a reason other than its status (`(degraded: the certificate expires in 2 days, …)`,
/// `(down: www.example.com A: NXDOMAIN)`), and the facts a TLS handshake or a DNS query showed, in brackets:
/// the certificate's subject and whole days left (`[CN=example.com, 89 days left]`), the answers' data
/// (`[192.0.2.1, 192.0.2.2]`).
public struct TextReporter: Reporter {
    let output: Output

    public init(output: Output) {
        self.output = output
    }

    public func report(_ states: [State]) async {
        var text = "Current state:\n"
        for state in states {
            text += " \(state.url) \(state.status)"
            text += Self.annotation(state)
            text += "\n"
        }
        self.output(text)
    }

    /// Answers shown per DNS URL; the rest are counted.
    static let shownAnswers = 5

    /// What follows the status on a URL's line: its health and facts, or nothing for a plain up URL.
    public static func annotation(_ state: State) -> String {
        var text = ""
        // The status says "down" by itself for a failure kind (`refused`) or an HTTP status outside `expect`
        // (the seed's `500 Internal Server Error`); anything else not up is said in words.
        let speaksForItself = state.health == .up || state.error == "status" || state.error == state.status
        if !speaksForItself {
            text += " (\(state.health.rawValue)\(state.detail.map { ": \($0)" } ?? ""))"
        }
        if let tls = state.tls {
            let days = tls.daysLeft(at: state.checkedAt)
            let left =
                days < 0
                ? "expired \(-days) day\(-days == 1 ? "" : "s") ago" : "\(days) day\(days == 1 ? "" : "s") left"
            text += " [\(tls.subject), \(left)]"
        }
        if let dns = state.dns, !dns.answers.isEmpty {
            var shown = dns.answers.prefix(Self.shownAnswers).map(\.data).joined(separator: ", ")
            if dns.answers.count > Self.shownAnswers { shown += ", +\(dns.answers.count - Self.shownAnswers) more" }
            text += " [\(shown)]"
        }
        return text
    }
}
