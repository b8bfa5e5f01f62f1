@testable import Engine
import Foundation
import Logging
import Testing

/// The per-URL options of tcp://, tls:// and dns:// URLs: read when right, a load error with file:line
/// when wrong.
@Suite(.timeLimit(.minutes(2))) struct ProbeOptionsTests {
    @Test(arguments: [
        ("\"tcp://127.0.0.1\"", "urls[2]: bad tcp:// URL \"tcp://127.0.0.1\": no port; write host:port"),
        ("\"tls://127.0.0.1:99999\"", "urls[2]: bad tls:// URL \"tls://127.0.0.1:99999\": the port must be a number"),
        // An http(s) port out of 1…65535 trapped at connect (or wrapped to another port for a host name).
        (
            "\"http://127.0.0.1:99999/\"",
            "urls[2]: the port must be a number from 1 to 65535 in \"http://127.0.0.1:99999/\""
        ),
        (
            "\"https://localhost:70000/x\"",
            "urls[2]: the port must be a number from 1 to 65535 in \"https://localhost:70000/x\""
        ),
        ("\"http://[::1]:65536/\"", "urls[2]: the port must be a number from 1 to 65535 in \"http://[::1]:65536/\""),
        ("\"http://h:4294967297/\"", "urls[2]: the port must be a number from 1 to 65535 in \"http://h:4294967297/\""),
        ("\"http://h:0/\"", "urls[2]: the port must be a number from 1 to 65535 in \"http://h:0/\""),
        (
            "\"http://u:pw@h:99999/\"",
            "urls[2]: the port must be a number from 1 to 65535 in \"http://u:xxxxx@h:99999/\""
        ),
        (
            "\"dns://127.0.0.1/example.com?type=AXFR\"",
            "urls[2]: bad dns:// URL \"dns://127.0.0.1/example.com?type=AXFR\": unknown DNS type \"AXFR\" (known types: A, AAAA,"
        ),
        (
            "{ url = \"http://127.0.0.1/b\", send = \"PING\" }",
            "urls[2] (http://127.0.0.1/b): field 'send' is for tcp:// URLs only"
        ),
        (
            "{ url = \"http://127.0.0.1/b\", tls = { verify = false } }",
            "urls[2] (http://127.0.0.1/b): field 'tls' is for tls:// and https:// URLs only (this URL is http://)"
        ),
        (
            "{ url = \"tls://127.0.0.1:443\", tls = { ca_file = \"missing.pem\" } }",
            "urls[2] (tls://127.0.0.1:443): tls.ca_file: cannot read \""
        ),
        (
            "{ url = \"tls://127.0.0.1:443\", tls = { ca_file = \"script.lua\" } }",
            "urls[2] (tls://127.0.0.1:443): tls.ca_file: \""
        ),
        (
            "{ url = \"tls://127.0.0.1:443\", tls = { cert_expiri = 3 } }",
            "urls[2] (tls://127.0.0.1:443): unknown field 'tls.cert_expiri'; did you mean 'cert_expiry'?"
        ),
        (
            "{ url = \"dns://127.0.0.1/a.test\", expect = { \"NOERROR\", \"GONE\" } }",
            "urls[2] (dns://127.0.0.1/a.test): field 'expect' must be a DNS response code"
        ),
    ])
    func load_whenAProbeOptionIsWrong_namesTheEntryAndLine(entry: String, message: String) throws {
        let (error, script) = try LuaRuntimeTests.loadError("urls = {\n  \"http://127.0.0.1/a\",\n  \(entry),\n}\n")
        #expect(error.kind == .configuration)
        #expect(error.message.hasPrefix("\(script.path):3: " + message), "\(error.message)")
    }

    @Test func load_readsSendTLSAndDNSOptions() throws {
        let ca = try TestCertificates.authority()
        let script = try TemporaryScript(
            """
            urls = {
              { url = "tcp://127.0.0.1:6379", send = "PING\\r\\n" },
              { url = "tls://db.example:5433", tls = { verify = false, server_name = "db", cert_expiry = 14,
                ca_file = "ca.pem" } },
              { url = "https://example.com/", tls = { cert_expiry = 21 } },
              { url = "dns:///example.com?type=mx", expect = { "NOERROR", "nxdomain" } },
            }
            """)
        try ca.pem.write(toFile: script.sibling("ca.pem"), atomically: true, encoding: .utf8)
        let targets = try ScriptHost(path: script.path, logger: Logger(label: "test")).config.targets
        #expect(targets[0].send == Array("PING\r\n".utf8))
        let tls = try #require(targets[1].tls)
        #expect(!tls.verify)
        #expect(tls.serverName == "db")
        #expect(tls.certExpiryDays == 14)
        #expect(tls.roots == [ca.certificate])
        #expect(targets[2].tls?.certExpiryDays == 21)
        #expect(targets[3].rcodes == ["NOERROR", "NXDOMAIN"])
        #expect(
            try DNSQuery.parse(targets[3].url).get() == DNSQuery(server: nil, port: 53, name: "example.com", type: "MX")
        )
    }

    @Test func scheme_picksTheProberByTheURLsScheme() {
        #expect(Scheme("tcp://a:1") == .tcp)
        #expect(Scheme("TLS://a:1") == .tls)
        #expect(Scheme("dns:///a") == .dns)
        #expect(Scheme("https://a/") == .http)
        #expect(Scheme("http://a/") == .http)
    }
}
