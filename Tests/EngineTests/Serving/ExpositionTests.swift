import Engine
import Testing

/// The exposition writer's output, read back by a real Prometheus text parser.
@Suite(.timeLimit(.minutes(2))) struct ExpositionTests {
    static func render(_ pairs: [(Target, State)], set: MetricSet = .default) -> String {
        var out = Exposition()
        ProbeMetrics.write(
            states: Dictionary(uniqueKeysWithValues: pairs.map { ($0.1.rawURL, $0.1) }),
            series: ProbeMetrics.series(for: pairs.map(\.0)), set: set, into: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// A URL of each kind, each with the facts its probe gives: an HTTP poll with timings and exchange facts
    /// (as the HTTP prober fills them), a tls:// poll with a certificate, a dns:// poll with an SOA answer,
    /// and a tcp:// poll, which has none.
    static func fleet() -> [(Target, State)] {
        func pair(_ url: String, _ status: String, code: Int? = nil, health: Health = .up) -> (Target, State) {
            (Target(url: url), State(url: url, name: url, status: status, code: code, health: health))
        }
        var https = pair("https://127.0.0.1:9/", "200 OK", code: 200)
        https.1.timings = PhaseTimings(
            resolve: .milliseconds(1), connect: .milliseconds(2), tls: .milliseconds(3), processing: .milliseconds(40),
            transfer: .milliseconds(5))
        https.1.http = HTTPFacts(
            version: 1.1, contentLength: nil, bodyLength: 512, redirects: 2, ssl: true, ipProtocol: 4)
        https.1.tls = TLSFacts(
            version: "TLSv1.3", subject: "CN=localhost", issuer: "CN=CA", sans: ["localhost"], notBefore: 1_700_000_000,
            notAfter: 1_800_000_000, chainNotAfter: 1_790_000_000)
        var plain = pair("http://127.0.0.1:9/", "404 Not Found", code: 404, health: .down)
        plain.1.http = HTTPFacts(version: 1.0, contentLength: 9, bodyLength: 9)
        var tls = pair("tls://127.0.0.1:9", "TLSv1.2", health: .degraded)
        tls.1.tls = TLSFacts(
            version: "TLSv1.2", subject: "CN=mail", issuer: "CN=CA", sans: [], notBefore: 1_700_000_000,
            notAfter: 1_750_000_000, chainNotAfter: 1_750_000_000)
        var dns = pair("dns://127.0.0.1:9/urlpoll.test?type=SOA", "NOERROR")
        dns.1.dns = DNSFacts(
            rcode: "NOERROR",
            answers: [
                .init(
                    name: "urlpoll.test", type: "SOA", ttl: 600,
                    data: "ns.urlpoll.test. hostmaster.urlpoll.test. 2026112901 1200 180 1209600 600")
            ], server: "127.0.0.1:9", authorityCount: 1, additionalCount: 2)
        let dnsDown = pair("dns://127.0.0.1:9/gone.urlpoll.test", "timeout", health: .down)
        let tcp = pair("tcp://127.0.0.1:9", "connected")
        return [https, plain, tls, dns, dnsDown, tcp]
    }

    @Test func defaultSet_addsTheCertificatesExpiry_onlyWhereAHandshakeWasSeen() async throws {
        let text = Self.render(Self.fleet())
        let samples = try await parsePrometheus(text)
        func values(_ name: String) -> [String: Double] {
            Dictionary(
                uniqueKeysWithValues: samples.filter { $0.name == name }.map { ($0.labels["instance"]!, $0.value) })
        }
        #expect(
            values("probe_ssl_earliest_cert_expiry") == [
                "https://127.0.0.1:9/": 1_790_000_000, "tls://127.0.0.1:9": 1_750_000_000,
            ])
        #expect(samples.first { $0.name == "probe_ssl_earliest_cert_expiry" }?.type == "gauge")
        // HTTP status codes are for HTTP URLs only.
        #expect(Set(values("probe_http_status_code").keys) == ["https://127.0.0.1:9/", "http://127.0.0.1:9/"])
        #expect(values("probe_success").count == 6)
        // Nothing of the full set.
        #expect(!text.contains("probe_http_duration_seconds"))
        #expect(!text.contains("probe_dns_"))
        #expect(!text.contains("probe_tls_version_info"))
    }

    @Test func fullSet_writesBlackboxsFamilies_forTheURLsThatHaveTheFact() async throws {
        let text = Self.render(Self.fleet(), set: .full)
        let samples = try await parsePrometheus(text)
        func values(_ name: String, _ label: String? = nil) -> [String: Double] {
            var out: [String: Double] = [:]
            for sample in samples where sample.name == name {
                let suffix = label.map { "/" + (sample.labels[$0] ?? "?") } ?? ""
                out[sample.labels["instance"]! + suffix] = sample.value
            }
            return out
        }
        let https = "https://127.0.0.1:9/"
        let plain = "http://127.0.0.1:9/"
        #expect(
            values("probe_http_duration_seconds", "phase") == [
                https + "/resolve": 0.001, https + "/connect": 0.002, https + "/tls": 0.003,
                https + "/processing": 0.04, https + "/transfer": 0.005,
            ])
        #expect(values("probe_http_content_length") == [https: -1, plain: 9])
        #expect(values("probe_http_uncompressed_body_length") == [https: 512, plain: 9])
        #expect(values("probe_http_redirects") == [https: 2, plain: 0])
        #expect(values("probe_http_ssl") == [https: 1, plain: 0])
        #expect(values("probe_http_version") == [https: 1.1, plain: 1.0])
        #expect(values("probe_ip_protocol") == [https: 4])
        #expect(
            values("probe_tls_version_info", "version") == [https + "/TLS 1.3": 1, "tls://127.0.0.1:9/TLS 1.2": 1])
        let soa = "dns://127.0.0.1:9/urlpoll.test?type=SOA"
        let gone = "dns://127.0.0.1:9/gone.urlpoll.test"
        #expect(values("probe_dns_query_succeeded") == [soa: 1, gone: 0])
        #expect(values("probe_dns_answer_rrs") == [soa: 1])
        #expect(values("probe_dns_authority_rrs") == [soa: 1])
        #expect(values("probe_dns_additional_rrs") == [soa: 1 + 1])
        #expect(values("probe_dns_serial") == [soa: 2_026_112_901])
        // The default families are still there; every family is a gauge, as blackbox's are.
        #expect(values("probe_success").count == 6)
        #expect(samples.filter { $0.name.hasPrefix("probe_") }.allSatisfy { $0.type == "gauge" })
        #expect(
            text.contains(
                "# HELP probe_http_duration_seconds Duration of http request by phase, summed over all redirects\n"))
    }

    @Test func everyLabelAFamilyAddsToAURLsSeries_isOneAURLMayNotSet() async throws {
        // Given: every per-URL family of the full set, each URL with all the facts its kind can have.
        let samples = try await parsePrometheus(Self.render(Self.fleet(), set: .full))
        // Then: a label urlpoll adds (urlpoll_state's state, the phases, the TLS version) is reserved, so a
        // URL's own `labels` cannot repeat it on the same series (a scrape Prometheus would refuse).
        let added = Set(samples.flatMap(\.labels.keys)).subtracting(["instance", "name"])
        #expect(!added.isEmpty)
        #expect(
            added.isSubset(of: MetricLabel.reservedNames),
            "not reserved: \(added.subtracting(MetricLabel.reservedNames))")
        for name in added { #expect(MetricLabel.problem(withName: name) != nil, "\(name)") }
    }

    @Test func aFamilyWithNoSamples_isNotWritten() {
        // Only a tcp:// URL: no HTTP, TLS or DNS facts, so none of their families, not even their HELP lines.
        let text = Self.render([Self.fleet()[5]], set: .full)
        #expect(text.contains("probe_success{"))
        for family in ["probe_http_", "probe_ssl_", "probe_tls_", "probe_dns_", "probe_ip_protocol"] {
            #expect(!text.contains(family), "\(family) written for a tcp:// URL")
        }
    }

    @Test func labels_withQuotesBackslashesAndNewlines_areEscaped_andReadBackExactly() async throws {
        let url = #"http://127.0.0.1:9/a\b"c?d="e\"#
        let name = "line one\nsays \"hi\" \\ then \\n stays"
        var target = Target(url: url, name: name)
        target.labels = [MetricLabel("team", "d\"b\\\nops"), MetricLabel("tier", "")]
        let state = State(url: url, name: name, status: "200 OK", code: 200, health: .up)

        let text = Self.render([(target, state)])
        let samples = try await parsePrometheus(text)

        let success = try #require(samples.first { $0.name == "probe_success" })
        #expect(success.labels == ["instance": url, "name": name, "team": "d\"b\\\nops", "tier": ""])
        #expect(success.value == 1)
        // Every line of the text is one sample or one comment: no raw newline escaped a label.
        #expect(
            text.split(separator: "\n").allSatisfy {
                $0.hasPrefix("#") || $0.hasPrefix("probe_") || $0.hasPrefix("urlpoll_")
            })
    }

    @Test func eachURL_getsItsValues_andTheStateFamilyMarksOnlyTheCurrentState() async throws {
        let up = Target(url: "http://127.0.0.1:9/up")
        let down = Target(url: "http://127.0.0.1:9/down")
        let samples = try await parsePrometheus(
            Self.render([
                (
                    up,
                    State(
                        url: up.url, name: up.name, status: "200 OK", code: 200, health: .up,
                        latency: .milliseconds(250))
                ),
                (
                    down,
                    State(
                        url: down.url, name: down.name, status: "refused", health: .down, error: "refused",
                        errorCount: 3,
                        latency: .milliseconds(2))
                ),
            ]))
        func value(_ name: String, _ url: String, state: String? = nil) -> Double? {
            samples.first { $0.name == name && $0.labels["instance"] == url && $0.labels["state"] == state }?.value
        }
        #expect(value("probe_success", up.url) == 1)
        #expect(value("probe_success", down.url) == 0)
        #expect(value("probe_duration_seconds", up.url) == 0.25)
        #expect(value("probe_http_status_code", up.url) == 200)
        #expect(value("probe_http_status_code", down.url) == 0)
        #expect(value("urlpoll_error_count", down.url) == 3)
        #expect(value("urlpoll_state", down.url, state: "down") == 1)
        #expect(value("urlpoll_state", down.url, state: "up") == 0)
        #expect(value("urlpoll_state", down.url, state: "degraded") == 0)
        #expect(value("urlpoll_state", up.url, state: "up") == 1)
    }

    @Test func aURLNotYetPolled_hasNoSeries() async throws {
        let polled = Target(url: "http://127.0.0.1:9/a")
        var out = Exposition()
        ProbeMetrics.write(
            states: [polled.url: State(url: polled.url, name: polled.name, status: "200 OK", code: 200, health: .up)],
            series: ProbeMetrics.series(for: [polled, Target(url: "http://127.0.0.1:9/b")]), into: &out)
        let samples = try await parsePrometheus(String(decoding: out.bytes, as: UTF8.self))
        #expect(Set(samples.compactMap { $0.labels["instance"] }) == [polled.url])
    }

    @Test func credentialsInAURL_areNeverServed() async throws {
        let url = "http://alice:s3cret@127.0.0.1:9/private?x=1"
        let target = Target(url: url)
        // A State carries the URL as printed (credentials redacted) and, as the monitor's key, as written.
        let state = State(
            url: target.displayURL, rawURL: target.url, name: target.name, status: "200 OK", code: 200, health: .up)
        let text = Self.render([(target, state)])
        #expect(!text.contains("s3cret"))
        #expect(!text.contains("alice"))
        let samples = try await parsePrometheus(text)
        #expect(samples.contains { $0.name == "probe_success" }, "the URL's series are served")
        #expect(samples.first?.labels["instance"] == "http://127.0.0.1:9/private?x=1")
        #expect(samples.first?.labels["name"] == "http://127.0.0.1:9/private?x=1")
        #expect(ProbeMetrics.redacted("http://127.0.0.1:9/a@b") == "http://127.0.0.1:9/a@b")
    }

    @Test func values_areWrittenAsPrometheusReadsThem() async throws {
        var out = Exposition()
        out.family("t", .gauge, help: "help with \\ and\nnewline")
        out.sample("t", extra: ("v", "inf"), .infinity)
        out.sample("t", extra: ("v", "-inf"), -.infinity)
        out.sample("t", extra: ("v", "nan"), .nan)
        out.sample("t", extra: ("v", "int"), 42)
        out.sample("t", extra: ("v", "frac"), 0.000123)
        let text = String(decoding: out.bytes, as: UTF8.self)
        #expect(text.contains("# HELP t help with \\\\ and\\nnewline\n"))
        #expect(text.contains("t{v=\"int\"} 42\n"))
        let samples = try await parsePrometheus(text)
        let byKind = Dictionary(uniqueKeysWithValues: samples.map { ($0.labels["v"] ?? "", $0.value) })
        #expect(byKind["inf"] == .infinity)
        #expect(byKind["-inf"] == -.infinity)
        #expect(byKind["nan"]?.isNaN == true)
        #expect(byKind["int"] == 42)
        #expect(byKind["frac"] == 0.000123)
    }
}
