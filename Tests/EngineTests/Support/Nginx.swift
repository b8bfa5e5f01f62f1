import Foundation

/// Nginx is Debian's nginx (the `nginx-light` package), started by a test on a free loopback port with a
/// configuration of its own in a temporary folder, and stopped when the value goes. Its access log records,
/// per request, the connection number, the request's number on that connection, the `Host` it received and
/// the request line, so a test can see what a real server made of urlpoll's requests.
final class Nginx: @unchecked Sendable {
    // @unchecked: every stored property is written once, in init.
    static let binary = "/usr/sbin/nginx"
    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: Self.binary) }

    let port: Int
    private let folder: URL
    private let process = Process()

    /// - Parameter locations: The `location` blocks of the one server.
    init(locations: String) throws {
        self.port = try closedPort()
        self.folder = FileManager.default.temporaryDirectory.appendingPathComponent("urlpoll-nginx-\(UUID())")
        try FileManager.default.createDirectory(at: self.folder, withIntermediateDirectories: true)
        let config = """
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(self.folder.path)/nginx.pid;
            error_log \(self.folder.path)/error.log;
            events { worker_connections 64; }
            http {
                log_format seen '$connection $connection_requests "$http_host" "$request" $status';
                access_log \(self.folder.path)/access.log seen;
                client_body_temp_path \(self.folder.path);
                proxy_temp_path \(self.folder.path);
                fastcgi_temp_path \(self.folder.path);
                uwsgi_temp_path \(self.folder.path);
                scgi_temp_path \(self.folder.path);
                keepalive_timeout 75s;
                server {
                    listen 127.0.0.1:\(self.port);
                    \(locations)
                }
            }
            """
        try config.write(to: self.folder.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        self.process.executableURL = URL(fileURLWithPath: Self.binary)
        self.process.arguments = ["-e", "\(self.folder.path)/error.log", "-p", self.folder.path, "-c", "nginx.conf"]
        self.process.standardOutput = FileHandle.nullDevice
        self.process.standardError = FileHandle.nullDevice
        try self.process.run()
    }

    var url: String { "http://127.0.0.1:\(self.port)" }

    /// Waits (up to 10 s) until nginx accepts connections.
    func ready() async throws {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(10), self.process.isRunning {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(self.port).bigEndian)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(fd)
            if connected { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CLIError(message: "nginx did not start: \(self.errors)")
    }

    /// The access log's lines: `connection requestOnConnection "host" "request line" status`.
    var log: [String] {
        let text = (try? String(contentsOf: self.folder.appendingPathComponent("access.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    private var errors: String {
        (try? String(contentsOf: self.folder.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
    }

    deinit {
        // SIGKILL: the test process blocks signals its children inherit, so nginx may never see a SIGTERM.
        kill(self.process.processIdentifier, SIGKILL)
        self.process.waitUntilExit()
        try? FileManager.default.removeItem(at: self.folder)
    }
}
