import CHeapStats
import Testing

@testable import Engine

/// A State keeps what every poll sets compact and what few States have in a box of its own, so 100,000 URLs'
/// last States take little heap; however it stores them, it reads, compares and hashes as set.
@Suite(.timeLimit(.minutes(2))) struct StateTests {
    /// An HTTP poll's State as `Resource.record` makes it: the URL's strings shared with its Target, a
    /// status, timings and exchange facts.
    static func polled(_ url: String, polls: Int = 3) -> State {
        var state = State(
            url: url, rawURL: url, name: url, status: "200 OK", code: 200, health: .up,
            latency: .microseconds(812), polls: polls, since: 1_796_000_000.25, checkedAt: 1_796_000_060.5,
            lateness: .milliseconds(3))
        state.timings = PhaseTimings(
            resolve: .microseconds(5), connect: .microseconds(40), processing: .microseconds(700),
            transfer: .microseconds(67))
        state.http = HTTPFacts(version: 1.1, contentLength: 0, bodyLength: 0, ipProtocol: 4)
        return state
    }

    @Test func anHTTPPollsState_takesUnder200HeapBytes() {
        // Given: 100,000 URLs (the bench's), made before counting, as the loader makes them.
        let urls = (1...100_000).map { "http://127.0.0.1:18480/s/\($0)" }
        // When: each gets the State of an HTTP poll (the least of three tries: tests running beside this one
        // allocate too).
        #expect(MemoryLayout<State>.stride == 8)
        var states: [State] = []
        var perState = Int.max
        for _ in 1...3 {
            states = []
            states.reserveCapacity(urls.count)
            let before = Int(heap_bytes_in_use())
            for url in urls { states.append(Self.polled(url)) }
            perState = min(perState, (Int(heap_bytes_in_use()) - before) / urls.count)
        }
        // Then: one box of the fields each (every field inline took about 520 bytes: three URL strings,
        // optionals' padding, `Duration`s of 16 bytes, TLS and DNS facts' room in every State).
        #expect(perState < 200, "\(perState) bytes per State")
        #expect(states[12_344].url == "http://127.0.0.1:18480/s/12345")
        #expect(states[12_344].timings?.processing == .microseconds(700))
    }

    @Test func fields_readAsSet_rareOnesIncluded() {
        var state = Self.polled("http://u:xxxxx@h/a")
        #expect(state.rawURL == "http://u:xxxxx@h/a")
        state.rawURL = "http://u:secret@h/a"
        state.name = "shop"
        state.error = "status"
        state.detail = "status 500 is not in expect 200-399"
        state.code = 500
        state.errorCount = 4
        state.ordinal = 2
        state.latency = .nanoseconds(1_234_567_891)
        state.http = HTTPFacts(version: 2, contentLength: nil, bodyLength: 17, redirects: 2, ssl: true)
        state.tls = TLSFacts(
            version: "TLS 1.3", cipher: nil, subject: "CN=h", issuer: "CN=ca", sans: ["h"], notBefore: 1, notAfter: 2,
            chainNotAfter: 2)
        #expect(state.url == "http://u:xxxxx@h/a")
        #expect(state.rawURL == "http://u:secret@h/a")
        #expect(state.name == "shop")
        #expect(state.error == "status")
        #expect(state.detail == "status 500 is not in expect 200-399")
        #expect(state.code == 500)
        #expect(state.errorCount == 4)
        #expect(state.ordinal == 2)
        #expect(state.latency == .nanoseconds(1_234_567_891))
        #expect(state.lateness == .milliseconds(3))
        #expect(state.http == HTTPFacts(version: 2, contentLength: nil, bodyLength: 17, redirects: 2, ssl: true))
        #expect(state.tls?.subject == "CN=h")
        #expect(state.dns == nil)
        // A URL changed keeps the name and URL as written it had.
        state.url = "http://u:xxxxx@h/b"
        #expect(state.rawURL == "http://u:secret@h/a")
        #expect(state.name == "shop")
        state.code = nil
        #expect(state.code == nil)
    }

    @Test func equalityAndHash_dependOnWhatIsSet_notOnHowItIsStored() {
        let url = "http://h/a"
        var a = Self.polled(url)
        var b = State(url: url, name: "other", status: "200 OK", code: 200, health: .up, polls: 3)
        b.name = url
        b.latency = .microseconds(812)
        b.since = 1_796_000_000.25
        b.checkedAt = 1_796_000_060.5
        b.lateness = .milliseconds(3)
        b.timings = a.timings
        b.http = a.http
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        a.error = "x"
        #expect(a != b)
        a.error = nil
        #expect(a == b)
        a.detail = "d"
        b.detail = "d"
        #expect(a == b)
    }
}
