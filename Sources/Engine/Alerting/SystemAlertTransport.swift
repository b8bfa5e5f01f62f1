import AsyncHTTPClient
import NIOCore
import Subprocess
import SystemPackage

/// SystemAlertTransport posts webhooks with AsyncHTTPClient and runs commands with Subprocess.
public struct SystemAlertTransport: AlertTransport {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let client: HTTPClient

    /// - Parameter client: The client for webhooks; keep it apart from the probing client so alert
    ///   delivery never competes with polls for connections.
    public init(client: HTTPClient) {
        self.client = client
    }

    public func deliver(_ alert: Alert, timeout: Duration) async throws {
        switch alert {
        case .post(let url, let body, let headers):
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "User-Agent", value: "urlpoll/\(urlpollVersion)")
            for header in headers { request.headers.replaceOrAdd(name: header.name, value: header.value) }
            request.body = .bytes(ByteBuffer(bytes: body))
            let response: HTTPClientResponse
            do {
                response = try await self.client.execute(request, timeout: .nanoseconds(Int64(timeout.seconds * 1e9)))
            } catch {
                // In words, as a poll's detail says it: NIO's own description of a connection error is garbled
                // ("connection reset (error set): Connection refused (errno: 111)" for a refused connection).
                throw Failure(description: HTTPProber.classify(error, timeout: timeout).detail)
            }
            _ = try? await response.body.collect(upTo: 64 << 10)
            guard (200...299).contains(response.status.code) else {
                throw Failure(
                    description: "the receiver answered \(response.status.code) \(response.status.reasonPhrase)")
            }
        case .exec(let argv, let input):
            guard let first = argv.first else { return }
            let executable: Executable = first.contains("/") ? .path(FilePath(first)) : .name(first)
            let result = try await withThrowingTaskGroup(
                of: ExecutionResult<Void, DiscardedOutput, StringOutput<UTF8>>?.self
            ) {
                group in
                group.addTask {
                    let arguments = Arguments(Array(argv.dropFirst()))
                    if input.isEmpty {
                        return try await Subprocess.run(
                            executable, arguments: arguments, output: .discarded, error: .string(limit: 4096))
                    }
                    return try await Subprocess.run(
                        executable, arguments: arguments, input: .array(input), output: .discarded,
                        error: .string(limit: 4096))
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
            guard let result else {
                throw Failure(description: "\(first) did not finish within \(formatSeconds(timeout.seconds)) s")
            }
            guard result.terminationStatus.isSuccess else {
                let stderr = result.standardError.split(separator: "\n").last.map { ": \($0)" } ?? ""
                throw Failure(description: "\(first) \(result.terminationStatus)\(stderr)")
            }
        }
    }
}
