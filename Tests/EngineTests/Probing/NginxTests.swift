import Engine
import Testing

/// Debian's nginx, started by the test: what a real server makes of urlpoll's requests on both HTTP paths
/// (skipped, saying so, where nginx is not installed; CI installs `nginx-light`).
@Suite(
    .timeLimit(.minutes(2)),
    .enabled(if: Nginx.isInstalled, "nginx is not installed at /usr/sbin/nginx (apt-get install nginx-light)"))
struct NginxTests {
    /// The script's `Host` is sent once (two would get a 400 from nginx), and polls share one kept-alive
    /// connection.
    @Test(.timeLimit(.minutes(1)), arguments: [true, false])
    func probe_withTheScriptsHost_isAnsweredOnce_onOneKeptConnection(plain: Bool) async throws {
        let nginx = try Nginx(locations: "location / { return 200 'ok'; }")
        try await nginx.ready()
        let targets = (0..<3).map { i in
            Target(url: nginx.url + "/\(i)", method: "GET", headers: [Header("Host", "example.test")])
        }
        let results = try await OddServerTests.probe(targets, plain: plain)
        #expect(results.map(\.outcome) == Array(repeating: .response(code: 200, reason: "OK"), count: 3))
        let log = nginx.log.map { $0.split(separator: " ", maxSplits: 2).map(String.init) }
        #expect(log.map { $0[2] } == (0..<3).map { "\"example.test\" \"GET /\($0) HTTP/1.1\" 200" })
        // One connection, carrying requests 1, 2 and 3.
        #expect(Set(log.map { $0[0] }).count == 1)
        #expect(log.map { $0[1] } == ["1", "2", "3"])
    }
}
