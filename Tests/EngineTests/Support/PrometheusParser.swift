import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

/// One sample as the Prometheus Python client's text parser reads it.
struct ParsedSample: Sendable, Equatable {
    let family: String
    let type: String
    let name: String
    let labels: [String: String]
    let value: Double
}

/// Parses Prometheus text exposition with a real parser: `prometheus_client.parser` (PyPI
/// `prometheus_client`, installed by .ci/run for the `python3` on PATH), in a child process given 30 s. Throws with the parser's
/// own message when the text is malformed.
func parsePrometheus(_ text: String) async throws -> [ParsedSample] {
    try await parsePrometheus(bytes: Array(text.utf8), gzipped: false)
}

/// Parses `bytes` as ``parsePrometheus(_:)`` does; `gzipped` bytes are gunzipped first by Python's own `gzip`
/// module, so a gzipped scrape is read as Prometheus reads it.
func parsePrometheus(bytes: [UInt8], gzipped: Bool) async throws -> [ParsedSample] {
    let program = """
        import sys, json, gzip
        from prometheus_client.parser import text_string_to_metric_families
        data = sys.stdin.buffer.read()
        if sys.argv[1] == "gzip":
            data = gzip.decompress(data)
        out = []
        for family in text_string_to_metric_families(data.decode("utf-8")):
            for s in family.samples:
                out.append([family.name, family.type, s.name, s.labels, repr(float(s.value))])
        print(json.dumps(out))
        """
    // Files, not pipes: nothing here blocks a thread of the cooperative pool while the child runs.
    let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("urlpoll-parse-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let input = directory.appendingPathComponent("in")
    let output = directory.appendingPathComponent("out")
    let errors = directory.appendingPathComponent("err")
    try Data(bytes).write(to: input)
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
    let process = Process()
    // The python3 on PATH, as the `pip` that installed the package is.
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", program, gzipped ? "gzip" : "plain"]
    process.standardInput = try FileHandle(forReadingFrom: input)
    process.standardOutput = try FileHandle(forWritingTo: output)
    process.standardError = try FileHandle(forWritingTo: errors)
    try process.run()
    let deadline = ContinuousClock.now + .seconds(30)
    while process.isRunning {
        guard ContinuousClock.now < deadline else {
            process.terminate()
            throw CLIError(message: "the Prometheus parser did not finish within 30 s")
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    let stdout = try Data(contentsOf: output)
    let stderr = try Data(contentsOf: errors)
    guard process.terminationStatus == 0 else {
        throw CLIError(message: "the Prometheus parser refused the text: \(String(decoding: stderr, as: UTF8.self))")
    }
    let rows = try #require(try JSONSerialization.jsonObject(with: stdout) as? [[Any]])
    return try rows.map { row in
        ParsedSample(
            family: try #require(row[0] as? String), type: try #require(row[1] as? String),
            name: try #require(row[2] as? String), labels: try #require(row[3] as? [String: String]),
            value: try #require(Double(row[4] as? String ?? "")))
    }
}

/// GETs `url` on loopback (10 s limit) and returns the status code, the response's header fields (by
/// lower-case name) and the body's bytes as they came (nothing is decompressed).
func fetchBytes(_ url: String, method: String = "GET", headers: [(String, String)] = []) async throws -> (
    status: Int, headers: [String: String], body: [UInt8]
) {
    var request = HTTPClientRequest(url: url)
    request.method = .init(rawValue: method)
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    // A client of its own: the shared one undoes a Content-Encoding, and the bytes as sent are the point here.
    let client = HTTPClient(eventLoopGroupProvider: .singleton)  // its default configuration decompresses nothing
    let answer: Result<(HTTPClientResponse, ByteBuffer), any Error>
    do {
        let response = try await client.execute(request, timeout: .seconds(10))
        answer = .success((response, try await response.body.collect(upTo: 256 << 20)))
    } catch {
        answer = .failure(error)
    }
    try await client.shutdown()
    let (response, body) = try answer.get()
    var fields: [String: String] = [:]
    for (name, value) in response.headers { fields[name.lowercased()] = value }
    return (Int(response.status.code), fields, Array(body.readableBytesView))
}

/// GETs `url` on loopback (10 s limit) and returns the status code, the Content-Type and the body.
func fetch(_ url: String, headers: [(String, String)] = []) async throws -> (
    status: Int, contentType: String, body: String
) {
    var request = HTTPClientRequest(url: url)
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let body = try await response.body.collect(upTo: 256 << 20)
    return (
        Int(response.status.code), response.headers.first(name: "content-type") ?? "",
        String(buffer: body)
    )
}
