import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

@testable import Engine

/// A kept-alive connection that turns stale between the pool handing it out and the request being written
/// (issue 10): urlpoll closes it for stray bytes, or the server closed it while it sat idle. The request was
/// never written, so it goes again on a new connection whatever its method, as Go's net/http does; a request
/// that was written is sent again only if its method is idempotent. The window is hit for sure: the client's
/// hand-out hook gives the server its cue and waits until the client has closed the connection.
@Suite(.timeLimit(.minutes(1))) struct StaleConnectionTests {
    /// A client whose hand-out waits for `cue`'s effect: the server acts, and the client closes the connection.
    static func client(cue: RecordingServer.Cue?) -> HTTP1Client {
        HTTP1Client(
            group: MultiThreadedEventLoopGroup.singleton, maximumIdlePerHost: 4, maximumIdle: 4,
            idleTimeout: .seconds(50),
            handingOut: { channel in
                guard let cue else { return }
                cue.give()
                // The stray bytes or the server's close reach the client, which closes the connection.
                try? await channel.closeFuture.get()
            })
    }

    static func send(_ client: HTTP1Client, _ url: String, _ method: HTTPMethod) async throws -> Int {
        let request = try #require(Target(url: url).request)
        let response = try await client.execute(
            request, method: method, fields: request.fields(method: method.rawValue, userAgent: "urlpoll/test"),
            tls: nil, deadline: .now() + .seconds(10), captureBody: false, maximumBodySize: 1 << 20)
        return Int(response.head.status.code)
    }

    /// `/page` answers HEAD with `Content-Length: 15` and sends the 15 bytes later (on cue); a POST to `/ok`
    /// on the same host is never handed that kept connection: once written, a POST cannot be sent again, and
    /// the stray bytes may arrive after it was written. It goes on a new connection, and the server sees it
    /// once. Before: handed the kept connection, the POST failed as `reset` or `bad_response`, unsent or not.
    @Test func post_afterAHeadWhoseBodyArrivesLate_goesOnANewConnection_once() async throws {
        let cue = RecordingServer.Cue()
        let server = try RecordingServer { request in
            if request.path == "/page" {
                return [.send("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n"), .wait(cue), .send("stray body 15 b")]
            }
            return [.ok(request, body: "")]
        }
        let handedOut = Mutex(0)
        let client = HTTP1Client(
            group: MultiThreadedEventLoopGroup.singleton, maximumIdlePerHost: 4, maximumIdle: 4,
            idleTimeout: .seconds(50), handingOut: { _ in handedOut.withLock { $0 += 1 } })
        defer {
            cue.give()
            client.shutdown()
        }

        #expect(try await Self.send(client, server.url + "/page", .HEAD) == 200)
        #expect(try await Self.send(client, server.url + "/ok", .POST) == 200)

        #expect(handedOut.withLock { $0 } == 0)
        #expect(server.requests.map(\.lines[0]) == ["HEAD /page HTTP/1.1", "POST /ok HTTP/1.1"])
        #expect(server.connections == 2)
    }

    /// The server closes the idle connection (FIN) on cue, after the pool handed it out: the GET goes again on
    /// a new connection; the POST is never handed the kept one.
    @Test(arguments: ["POST", "GET"])
    func request_handedAConnectionTheServerClosedWhileIdle_goesOnANewOne_once(method: String) async throws {
        let cue = RecordingServer.Cue()
        let server = try RecordingServer { request in
            if request.path == "/first" { return [.ok(request, body: ""), .wait(cue), .close] }
            return [.ok(request, body: "")]
        }
        let client = Self.client(cue: cue)
        defer {
            cue.give()  // a POST is not handed the kept connection, so the hook never gave it
            client.shutdown()
        }

        #expect(try await Self.send(client, server.url + "/first", .GET) == 200)
        #expect(try await Self.send(client, server.url + "/second", HTTPMethod(rawValue: method)) == 200)

        #expect(server.requests.map(\.lines[0]) == ["GET /first HTTP/1.1", "\(method) /second HTTP/1.1"])
        #expect(server.connections == 2)
    }

    /// A POST that was written and then reset without an answer is not sent again: the server may have acted
    /// on it.
    @Test func post_writtenAndThenReset_isNotSentAgain() async throws {
        let server = try RecordingServer { request in
            request.method == "POST" ? [.reset] : [.ok(request, body: "")]
        }
        let client = Self.client(cue: nil)
        defer { client.shutdown() }

        #expect(try await Self.send(client, server.url + "/first", .GET) == 200)
        await #expect {
            try await Self.send(client, server.url + "/submit", .POST)
        } throws: { error in
            // The client's own error; the prober words it as `reset` (HostileServerTests).
            (error as? IOError)?.errnoCode == ECONNRESET || (error as? ProbeFailure)?.kind == .reset
        }

        #expect(server.requests.map(\.lines[0]) == ["GET /first HTTP/1.1", "POST /submit HTTP/1.1"])
        #expect(server.connections == 2)
    }
}
