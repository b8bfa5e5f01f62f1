import Testing

@testable import Engine

/// Which URLs the plain-HTTP path takes, and what it sends for them.
@Suite struct EndpointTests {
    @Test(arguments: [
        ("http://example.com", "example.com", 80, "example.com", "/"),
        ("http://example.com/a/b?c=d#frag", "example.com", 80, "example.com", "/a/b?c=d"),
        ("http://example.com?q=1", "example.com", 80, "example.com", "/?q=1"),
        ("http://127.0.0.1:8080/health", "127.0.0.1", 8080, "127.0.0.1:8080", "/health"),
        ("http://[::1]:9000/x", "::1", 9000, "[::1]:9000", "/x"),
        ("http://[::1]/", "::1", 80, "[::1]", "/"),
    ])
    func endpoint_splitsAPlainHTTPURL(url: String, host: String, port: Int, authority: String, path: String) {
        let endpoint = HTTP1Client.Endpoint(url)
        #expect(endpoint?.host == host)
        #expect(endpoint?.port == port)
        #expect(endpoint?.authority == authority)
        #expect(endpoint?.path == path)
    }

    /// These go to AsyncHTTPClient, which handles them or says what is wrong.
    @Test(arguments: [
        "https://example.com/", "http://user:pass@example.com/", "http://", "http:///path", "http://host:0/",
        "http://host:99999/", "http://host:port/", "http://[::1/", "http://host/a b", "ftp://host/",
    ])
    func endpoint_leavesOtherURLsToAsyncHTTPClient(url: String) {
        #expect(HTTP1Client.Endpoint(url) == nil)
    }
}
