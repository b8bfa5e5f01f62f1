import Foundation
import Testing

/// `urlpoll run --store` against a PostgreSQL that asks for a password (SCRAM-SHA-256, RFC 7677): a server
/// of the test's own (TestPostgres.Cluster with a password). The password comes from `PGPASSWORD` or the
/// password file (<https://www.postgresql.org/docs/15/libpq-pgpass.html>) and is never printed.
@Suite(.serialized, .timeLimit(.minutes(3))) struct StorePasswordCLITests {
    static let password = "pw-4f9c2e71-scram"

    /// Runs an instance with `environment` until it has polled and answered /metrics and /status, then
    /// stops it; or until it exits on its own (a store it cannot use). Returns its exit status (nil when it
    /// ran), and everything it printed and served.
    static func instance(store url: String, environment: [String: String]) async throws -> (
        status: Int32?, said: String
    ) {
        let server = try RecordingServer.keepAlive()
        let script = try TemporaryScript("urls = { \"\(server.url)/a\" }\npoll_interval = 0.2\nstatus_interval = 0.2")
        let process = try CLIProcess(
            ["run", script.path, "--store", url, "--listen", "127.0.0.1:0"], environment: environment)
        defer { process.signal(SIGKILL) }
        let listening = await eventually(within: .seconds(30)) {
            process.stderr.contains("listening on 127.0.0.1:") || !process.isRunning
        }
        #expect(listening, "\(process.stderr)")
        guard process.stderr.contains("listening on 127.0.0.1:") else {
            let status = await process.wait(limit: .seconds(30))
            return (status, process.stderr + process.stdout)
        }
        let line = try #require(process.stderr.split(separator: "\n").first { $0.contains("listening on 127.0.0.1:") })
        let port = try #require(Int(line.split(separator: ":").last?.prefix { $0.isNumber } ?? ""))
        #expect(await eventually(within: .seconds(30)) { server.requests.count >= 2 }, "\(process.stderr)")
        var said = ""
        for path in ["/metrics", "/status", "/status/1"] {
            said += try await fetch("http://127.0.0.1:\(port)\(path)").body
        }
        process.signal(SIGTERM)
        #expect(await process.wait(limit: .seconds(30)) == 0, "\(process.stderr)")
        return (nil, said + process.stderr + process.stdout)
    }

    @Test func passwordProtectedStore_noneWrongEnvironmentAndPgpass_inWords_andNeverPrinted() async throws {
        guard TestPostgres.Cluster.binaries != nil else {
            try #require(ProcessInfo.processInfo.environment["CI"] == nil, "PostgreSQL is not installed")
            return
        }
        let postgres = try await TestPostgres.Cluster.start(password: Self.password)
        defer { TestPostgres.Cluster.stop(directory: postgres.directory) }
        let url = "postgresql://postgres@127.0.0.1:\(postgres.port)/postgres?sslmode=disable"
        let home = HistoryCLITests.Folder()
        try FileManager.default.createDirectory(atPath: home.path, withIntermediateDirectories: true)
        let pgpass = home.path + "/.pgpass"
        let shown = "postgresql://postgres@127.0.0.1:\(postgres.port)/postgres"

        // No password: refused (exit 2), naming where a password comes from.
        let none = try await Self.instance(store: url, environment: ["HOME": home.path])
        #expect(none.status == 2)
        #expect(
            none.said.contains(
                "\(shown): cannot connect: the server asks for a password and none was given: set PGPASSWORD or a ~/.pgpass entry (or PGPASSFILE)"
            ), "\(none.said)")

        // A wrong password: refused in PostgreSQL's words; neither password printed.
        let wrong = try await Self.instance(
            store: url, environment: ["HOME": home.path, "PGPASSWORD": "wrong-\(Self.password)"])
        #expect(wrong.status == 2)
        #expect(wrong.said.contains("password authentication failed for user \"postgres\""), "\(wrong.said)")
        #expect(!wrong.said.contains(Self.password))

        // PGPASSWORD: it runs, polls and serves; the password shows nowhere (log, /metrics, /status).
        let environment = try await Self.instance(
            store: url, environment: ["HOME": home.path, "PGPASSWORD": Self.password])
        #expect(environment.status == nil)
        #expect(!environment.said.contains(Self.password))

        // ~/.pgpass, mode 0600: it runs the same.
        try "127.0.0.1:\(postgres.port):*:postgres:\(Self.password)\n".write(
            toFile: pgpass, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: pgpass)
        let file = try await Self.instance(store: url, environment: ["HOME": home.path])
        #expect(file.status == nil, "\(file.said)")
        #expect(!file.said.contains(Self.password))

        // ~/.pgpass readable by others: ignored with a warning, as libpq does; then no password.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: pgpass)
        let open = try await Self.instance(store: url, environment: ["HOME": home.path])
        #expect(open.status == 2)
        #expect(
            open.said.contains(
                "the password file \(pgpass) is ignored: it can be read by its group or others (mode 644); make it readable by its owner only (chmod 0600), as libpq asks"
            ), "\(open.said)")
        #expect(open.said.contains("set PGPASSWORD or a ~/.pgpass entry"), "\(open.said)")
        #expect(!open.said.contains(Self.password))
    }
}
