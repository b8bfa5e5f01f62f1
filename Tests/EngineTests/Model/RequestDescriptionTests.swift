import Foundation
import Testing

@testable import Engine

/// RequestDescription reads a URL once at load: the byte scan of the common form must say exactly what
/// Foundation's URLComponents says, for every shape it accepts.
@Suite(.timeLimit(.minutes(2))) struct RequestDescriptionTests {
    static let schemes = ["http", "https", "HTTP", "Https"]
    static let hosts = [
        "127.0.0.1", "localhost", "example.com", "EXAMPLE.com", "a-b.c_d~e", "a", "1", "xn--bcher-kva.example",
        "[::1]", "[2001:db8::1]", "user@h", "u:p@h", "u:p%40x@h", "user:@h", ":p@h", "", "h%41", "h h", "h^",
    ]
    static let ports = [
        "", ":80", ":443", ":8080", ":1", ":65535", ":65536", ":99999", ":0", ":080", ":", ":x", ":123456",
    ]
    static let paths = [
        "", "/", "/a", "/a/b/", "/a%20b", "/%7Euser", "/a%2", "/a%zz", "/;p=1", "/a:b@c", "/!$&'()*+,=",
        "/-._~", "/a b", "/ä", "/a|b", "/a{b}", "/a\"b", "/a^b", "/a`b", "/a[b]", "/a\\b", "/../a/./b", "//a",
        "x", "@x",
    ]
    static let queries = ["", "?", "?a=1", "?a=1&b=2", "?a=/b?c", "?%41", "?a b", "?a#b", "#frag", "?q#f", "?a[0]=1"]

    @Test func scan_agreesWithURLComponents_forEveryShapeItReads() {
        var scanned = 0
        var total = 0
        for scheme in Self.schemes {
            for host in Self.hosts {
                for port in Self.ports {
                    for path in Self.paths {
                        for query in Self.queries {
                            let url = "\(scheme)://\(host)\(port)\(path)\(query)"
                            total += 1
                            guard let fast = RequestDescription.URLParts(scanning: url) else { continue }
                            scanned += 1
                            #expect(fast == RequestDescription.URLParts(parsing: url), "\(url)")
                        }
                    }
                }
            }
        }
        // The scan reads the common shapes (not only the odd ones fall through to URLComponents).
        #expect(scanned > total / 50)
    }

    @Test func scan_readsTheCommonForm() throws {
        let parts = try #require(RequestDescription.URLParts(scanning: "http://127.0.0.1:18480/u/7?x=1"))
        #expect(parts.scheme == "http")
        #expect(parts.host == "127.0.0.1")
        #expect(parts.port == 18480)
        #expect(parts.target == "/u/7?x=1")
        #expect(parts.user == nil)
        let bare = try #require(RequestDescription.URLParts(scanning: "HTTPS://example.com"))
        #expect(bare.scheme == "https")
        #expect(bare.port == 443)
        #expect(bare.target == "/")
    }

    @Test func scan_leavesCredentialsIPv6FragmentsAndIDNsToURLComponents() throws {
        for url in [
            "http://u:p@h/", "http://[::1]:8080/", "http://h/#f", "http://h:0/", "http://h/a b",
            "http://xn--bcher-kva.example/",
        ] {
            #expect(RequestDescription.URLParts(scanning: url) == nil, "\(url)")
        }
        let request = try #require(RequestDescription(url: "http://probe:p%40ss@127.0.0.1:9/s", headers: []))
        #expect(request.credentials?.user == "probe")
        #expect(request.credentials?.password == "p@ss")
        #expect(try #require(RequestDescription(url: "http://[::1]:8080/x", headers: [])).host == "::1")
    }
}
