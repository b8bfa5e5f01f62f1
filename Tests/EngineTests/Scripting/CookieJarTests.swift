@testable import Engine
import Testing

/// The session cookie store's rules (RFC 6265 §5.3, §5.4), without a server.
@Suite(.timeLimit(.minutes(2))) struct CookieJarTests {
    static func at(_ url: String) -> RequestDescription {
        RequestDescription(url: url, headers: [])!
    }

    @Test func hostOnlyCookie_goesBackToItsHostAndPathOnly() {
        var sut = CookieJar()
        sut.store(["sid=1", "pref=a; Path=/app"], from: Self.at("http://api.example/login/form"), now: 0)

        // The default path is the request's directory (/login); an explicit Path is kept.
        #expect(sut.header(for: Self.at("http://api.example/login/next"), now: 0) == "sid=1")
        #expect(sut.header(for: Self.at("http://api.example/app/x?q=1"), now: 0) == "pref=a")
        #expect(sut.header(for: Self.at("http://api.example/application"), now: 0) == nil)
        #expect(sut.header(for: Self.at("http://www.api.example/login/next"), now: 0) == nil)
    }

    @Test func domainCookie_goesToSubdomains_andOneForAnotherDomainIsIgnored() {
        var sut = CookieJar()
        sut.store(
            ["a=1; Domain=example.com; Path=/", "b=2; Domain=other.org; Path=/"],
            from: Self.at("http://login.example.com/"), now: 0)

        #expect(sut.cookies.map(\.name) == ["a"])
        #expect(sut.header(for: Self.at("http://api.example.com/x"), now: 0) == "a=1")
        #expect(sut.header(for: Self.at("http://example.com/"), now: 0) == "a=1")
        #expect(sut.header(for: Self.at("http://notexample.com/"), now: 0) == nil)
    }

    @Test func expiry_maxAgeZero_andSecure() {
        var sut = CookieJar()
        let site = Self.at("https://shop.example/")
        sut.store(["s=1; Path=/; Max-Age=60", "t=2; Path=/; Secure", "u=3; Path=/"], from: site, now: 1000)

        // Secure cookies go over https only; Max-Age counts from when it was stored.
        #expect(sut.header(for: site, now: 1059) == "s=1; t=2; u=3")
        #expect(sut.header(for: Self.at("http://shop.example/"), now: 1059) == "s=1; u=3")
        #expect(sut.header(for: site, now: 1060) == "t=2; u=3")

        // Max-Age=0 removes the stored cookie; a new value replaces the old one.
        sut.store(["u=; Path=/; Max-Age=0", "t=9; Path=/; Secure"], from: site, now: 1061)
        #expect(sut.header(for: site, now: 1061) == "t=9")
    }

    @Test func longerPathsComeFirst() {
        var sut = CookieJar()
        sut.store(["a=1; Path=/", "b=2; Path=/api/v1"], from: Self.at("http://h/"), now: 0)
        #expect(sut.header(for: Self.at("http://h/api/v1/orders"), now: 0) == "b=2; a=1")
    }
}
