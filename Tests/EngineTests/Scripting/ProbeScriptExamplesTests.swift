import Foundation
import Testing

/// scripts/ports.lua, scripts/dns.lua and scripts/certificates.lua, each run once by the binary against
/// real loopback servers.
@Suite(.timeLimit(.minutes(2))) struct ProbeScriptExamplesTests {
    @Test func portsScript_checksBanners_andReportsARefusedPort() async throws {
        let ssh = try await BannerServer(banner: "SSH-2.0-OpenSSH_9.2\r\n")
        let redis = try await BannerServer(banner: "")
        let closed = try closedPort()
        let result = try await CLIProcess.run([
            "once", "scripts/ports.lua", "--", "127.0.0.1", "\(ssh.port)", "\(redis.port)", "\(closed)",
        ])
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map {
            $0.split(separator: " ", omittingEmptySubsequences: true)
        }
        #expect(lines.contains { $0.starts(with: ["up", "ssh"]) }, "\(result.stdout)")
        #expect(lines.contains { $0.starts(with: ["up", "redis"]) }, "\(result.stdout)")
        #expect(
            lines.contains { $0.starts(with: ["down", "postgres", "refused", "127.0.0.1:\(closed)", "refused"]) },
            "\(result.stdout)")
        // The SSH port's banner is not Redis's: the check says so.
        let swapped = try await CLIProcess.run([
            "once", "scripts/ports.lua", "--", "127.0.0.1", "\(redis.port)", "\(ssh.port)", "\(closed)",
        ])
        #expect(
            swapped.stdout.contains("redis     connected  unexpected reply \"SSH-2.0-OpenSSH_9.2"), "\(swapped.stdout)")
        try await ssh.stop()
        try await redis.stop()
    }

    @Test func dnsScript_isUpWhenTheNameResolvesToTheAddress_andDownOtherwise() async throws {
        let dns = try Dnsmasq()
        defer { dns.stop() }
        let good = try await CLIProcess.run([
            "once", "scripts/dns.lua", "--", dns.server, "www.urlpoll.test", "192.0.2.10",
        ])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        let moved = try await CLIProcess.run([
            "once", "scripts/dns.lua", "--", dns.server, "www.urlpoll.test", "192.0.2.99",
        ])
        #expect(moved.status == 1)
        #expect(
            moved.stdout.contains("www.urlpoll.test resolves to 192.0.2.10, not 192.0.2.99 (NOERROR)"),
            "\(moved.stdout)")
    }

    @Test func certificatesScript_degradesASiteWithin21Days_andAlertsOncePerCertificate() async throws {
        let ca = try TestCertificates.authority()
        let fresh = try await TLSServer(chain: [TestCertificates.leaf(["127.0.0.1"], notAfter: 90 * 86_400, issuer: ca)]
        )
        // 9 days and 23 hours: whole days left are 9 however X.509 rounds the time to seconds.
        let soon = try await TLSServer(
            chain: [TestCertificates.leaf(["127.0.0.1"], notAfter: 10 * 86_400 - 3_600, issuer: ca)])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "urlpoll-ca-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let caFile = directory.appendingPathComponent("ca.pem").path
        try ca.pem.write(toFile: caFile, atomically: true, encoding: .utf8)
        let result = try await CLIProcess.run([
            "once", "scripts/certificates.lua", "--", "127.0.0.1:\(fresh.port)", "127.0.0.1:\(soon.port)", caFile,
        ])
        #expect(result.status == 3, "\(result.stdout)\(result.stderr)")
        let alerts = result.stdout.split(separator: "\n").filter { $0.hasPrefix("certificate alert: ") }
        #expect(alerts.count == 1, "\(result.stdout)")
        #expect(
            alerts.first?.contains("127.0.0.1:\(soon.port) (CN=127.0.0.1): the certificate expires in 9 days") == true)
        try await fresh.stop()
        try await soon.stop()
    }
}
