import CHeapStats
import Testing

@testable import Engine

/// A Target is four words and keeps the options few URLs set in a box of their own, so a long list of plain
/// URLs costs their strings and little else; however it stores them, it reads and compares as declared.
@Suite(.timeLimit(.minutes(2))) struct TargetTests {
    /// Heap bytes in use (glibc's `mallinfo2`: the arenas' and the mapped chunks').
    static func heapInUse() -> Int { Int(heap_bytes_in_use()) }

    @Test func plainURLs_takeLittleHeapBesideTheirStrings() {
        // Given: 100,000 plain URLs short enough to be held inside their String (15 bytes or fewer).
        let urls = (0..<100_000).map { "http://h/\($0)" }
        #expect(urls.allSatisfy { $0.utf8.count <= 15 })
        // When: each becomes a Target, as the loader makes them (the least of three tries: tests running
        // beside this one allocate too).
        var targets: [Target] = []
        var perTarget = Int.max
        for _ in 1...3 {
            targets = []
            let before = Self.heapInUse()
            targets.reserveCapacity(urls.count)
            for url in urls { targets.append(Target(url: url)) }
            perTarget = min(perTarget, (Self.heapInUse() - before) / urls.count)
        }
        // Then: each takes its slot in the array and nothing else (a box of every field, its parsed request
        // and header list took about 600 bytes each), and reads as declared.
        #expect(MemoryLayout<Target>.stride <= 32)
        #expect(perTarget < 96, "\(perTarget) bytes per Target")
        #expect(targets[12_345].request?.target == "/12345")
        #expect(targets[12_345].name == "http://h/12345")
    }

    @Test func equalityAndHash_dependOnWhatIsDeclared_notOnHowItIsStored() {
        let url = "http://127.0.0.1:8080/a"
        var named = Target(url: url, name: url)
        named.headers = []
        named.expect = .default
        #expect(named == Target(url: url))
        #expect(named.hashValue == Target(url: url).hashValue)
        var other = Target(url: url)
        other.name = "a"
        #expect(other != Target(url: url))
        other.name = url
        #expect(other == Target(url: url))
        var captured = Target(url: url)
        captured.captureBody = true
        #expect(captured != Target(url: url))
    }

    @Test(arguments: [
        "http://127.0.0.1:8080/a?b=1", "https://example.com", "http://u:p@h/x", "http://[::1]:81/", "tcp://h:5432",
        "dns://127.0.0.1/example.com?type=A", "http://h/a#frag",
    ])
    func request_isWhatTheURLAndHeadersSay_whetherKeptOrReadAgain(url: String) {
        var target = Target(url: url)
        #expect(target.request == RequestDescription(url: url, headers: []))
        target.headers = [Header("X-A", "1")]
        target.body = "b"
        #expect(target.request == RequestDescription(url: url, headers: [Header("X-A", "1")], body: Array("b".utf8)))
        target.headers = []
        target.body = nil
        #expect(target.request == RequestDescription(url: url, headers: []))
        #expect(target == Target(url: url))
    }

    @Test func url_whenChanged_changesItsPrintedFormNameAndRequest() {
        var target = Target(url: "http://u:secret@h/x")
        #expect(target.displayURL == "http://u:xxxxx@h/x")
        #expect(target.name == "http://u:xxxxx@h/x")
        target.url = "http://h/y"
        #expect(target.displayURL == "http://h/y")
        #expect(target.request?.target == "/y")
        #expect(target.request?.credentials == nil)
        #expect(target == Target(url: "http://h/y"))
    }
}
