import Engine
import Foundation
import Logging
import PostgresNIO
import Testing

/// TestPostgres gives a test a database of its own on a real PostgreSQL server: the one
/// `URLPOLL_TEST_POSTGRES` names (a `postgresql://` URL; .ci/run starts one and sets it), else a throwaway
/// cluster of Debian's PostgreSQL (`apt-get install postgresql`) that the first test to ask starts on a
/// free loopback port (initdb in a temporary folder as the `postgres` user, `pg_ctl start -w`) and that is
/// stopped when the test process exits. Without either, a test is skipped with a message, except under
/// `CI=true`, where that fails it.
enum TestPostgres {
    /// The server's URL, connecting as a superuser to the `postgres` database; nil when there is none.
    private static let server = Task<String?, any Error> {
        if let url = ProcessInfo.processInfo.environment["URLPOLL_TEST_POSTGRES"] { return url }
        guard Cluster.binaries != nil else { return nil }
        let cluster = try await Cluster.start()
        stopAtExit = cluster.directory
        atexit {
            if let directory = stopAtExit { Cluster.stop(directory: directory) }
        }
        // Also when the test process ends without running atexit handlers (a crash, a kill, a runner that
        // leaves with _exit): a watchdog of its own session stops the cluster once this process is gone.
        _ = await Cluster.shell(
            "setsid bash -c 'while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; \(Cluster.stopCommand(cluster.directory))' _ \"$0\" >/dev/null 2>&1 &",
            ["\(getpid())"], limit: 10)
        return cluster.url
    }

    /// A fresh, empty database on the tests' server, as a `postgresql://` URL; nil (having said why) when
    /// no PostgreSQL is at hand and CI is not set.
    static func database(_ test: String = #function) async throws -> String? {
        guard let server = try await Self.server.value else {
            try #require(
                ProcessInfo.processInfo.environment["CI"] == nil,
                "PostgreSQL is not installed (apt-get install -y postgresql) and URLPOLL_TEST_POSTGRES is not set; CI must run this test"
            )
            print("skipping \(test): PostgreSQL is not installed (apt-get install -y postgresql)")
            return nil
        }
        let name = "urlpoll_test_\(UInt32.random(in: 0...UInt32.max))"
        let location = try PostgresLocation(server, environment: ProcessInfo.processInfo.environment)
        _ = try await Self.withConnection(location) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Self.logger)
        }
        return
            "postgresql://\(location.user)@\(location.host):\(location.port)/\(name)?sslmode=\(location.tls.rawValue)"
    }

    static let logger = Logger(label: "tests.postgres") { _ in SwiftLogNoOpLogHandler() }

    /// Runs `body` on a connection of its own to `location`.
    static func withConnection<T: Sendable>(
        _ location: PostgresLocation, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: location.host, port: location.port, username: location.user, password: location.password,
                database: location.database, tls: .disable), id: 1, logger: Self.logger)
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Runs one query of the test's own on `url`'s database and returns its rows' first column as `T`.
    static func column<T: PostgresDecodable & Sendable>(_ url: String, _ sql: String, as type: T.Type) async throws
        -> [T]
    {
        let location = try PostgresLocation(url, environment: ProcessInfo.processInfo.environment)
        return try await Self.withConnection(location) { connection in
            var values: [T] = []
            for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger)
                .decode(T.self)
            {
                values.append(value)
            }
            return values
        }
    }

    /// A throwaway PostgreSQL cluster: initdb in a temporary folder, one server on a free loopback port, trust
    /// authentication for loopback connections, fsync off (nothing here must survive a crash).
    struct Cluster: Sendable {
        let directory: String
        let port: Int
        /// The superuser's password when the cluster asks for one (``start(password:)``), else nil (trust).
        var password: String? = nil

        /// The folder of Debian's PostgreSQL programs (the highest version installed), if any.
        static let binaries: String? = {
            let root = "/usr/lib/postgresql"
            let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            guard let version = versions.compactMap(Int.init).max() else { return nil }
            let binaries = "\(root)/\(version)/bin"
            return FileManager.default.isExecutableFile(atPath: binaries + "/initdb") ? binaries : nil
        }()

        var url: String { "postgresql://postgres@127.0.0.1:\(self.port)/postgres?sslmode=disable" }

        /// Makes and starts a cluster, waiting (at most 60 s) until it accepts connections. With `password`,
        /// every connection must authenticate with SCRAM-SHA-256 (`initdb --auth=scram-sha-256`, RFC 7677) as
        /// the superuser `postgres` with that password; without, loopback connections are trusted.
        static func start(password: String? = nil) async throws -> Cluster {
            guard let binaries = Self.binaries else { throw TestPostgresError("PostgreSQL is not installed") }
            let directory = "/tmp/urlpoll-postgres-\(UUID().uuidString.prefix(8))"
            let (fd, port) = try bindLoopback()
            close(fd)
            let asPostgres = getuid() == 0 ? "runuser -u postgres -- " : ""
            let script = """
                set -e
                mkdir -p "$0"
                \(getuid() == 0 ? "chown postgres: \"$0\"" : "true")
                printf '%s\\n' "$2" >"$0/pwfile"
                \(getuid() == 0 ? "chown postgres: \"$0/pwfile\"" : "true")
                \(asPostgres)"$1/initdb" -D "$0/data" -U postgres \(password == nil ? "-A trust" : "-A scram-sha-256 --pwfile=\"$0/pwfile\"") --no-sync -E UTF8 >"$0/initdb.log" 2>&1
                rm -f "$0/pwfile"
                """
            let made = await Self.shell(script, [directory, binaries, password ?? ""], limit: 120)
            guard made == 0 else {
                let log = (try? String(contentsOfFile: directory + "/initdb.log", encoding: .utf8)) ?? ""
                throw TestPostgresError("initdb failed\(made == nil ? " (timed out)" : ""): \(log)")
            }
            let cluster = Cluster(directory: directory, port: port, password: password)
            try await cluster.startServer()
            return cluster
        }

        /// Starts the server (`pg_ctl start -w`, at most 60 s).
        func startServer() async throws {
            guard let binaries = Self.binaries else { throw TestPostgresError("PostgreSQL is not installed") }
            let asPostgres = getuid() == 0 ? "runuser -u postgres -- " : ""
            let options = "-p \(self.port) -k \(self.directory) -c listen_addresses=127.0.0.1 -c fsync=off"
            let started = await Self.shell(
                "\(asPostgres)\"$1/pg_ctl\" -D \"$0/data\" -l \"$0/server.log\" -o \"\(options)\" -w -t 60 start >\"$0/pg_ctl.log\" 2>&1",
                [self.directory, binaries], limit: 70)
            guard started == 0 else {
                let log = (try? String(contentsOfFile: self.directory + "/pg_ctl.log", encoding: .utf8)) ?? ""
                throw TestPostgresError("pg_ctl start failed\(started == nil ? " (timed out)" : ""): \(log)")
            }
        }

        /// Stops the server at once (`pg_ctl stop -m immediate`), keeping its folder.
        func stopServer() async throws {
            guard let binaries = Self.binaries else { throw TestPostgresError("PostgreSQL is not installed") }
            let asPostgres = getuid() == 0 ? "runuser -u postgres -- " : ""
            _ = await Self.shell(
                "\(asPostgres)\"$1/pg_ctl\" -D \"$0/data\" -m immediate -w -t 30 stop >/dev/null 2>&1",
                [self.directory, binaries], limit: 40)
        }

        /// Freezes the server as a machine that stops answering would (SIGSTOP to the postmaster and its
        /// children, the backends of every connection among them): connections stay open, nothing is
        /// answered, statements sent meanwhile run when it thaws (``thaw()``).
        func freeze() async throws {
            try await self.signal("STOP")
        }

        /// Lets a frozen server run on (SIGCONT to the postmaster and its children).
        func thaw() async throws {
            try await self.signal("CONT")
        }

        private func signal(_ name: String) async throws {
            let status = await Self.shell(
                "p=$(head -n 1 \"$0/data/postmaster.pid\") && kill -\(name) \"$p\" $(grep -ls \"^PPid:[[:space:]]*$p\\$\" /proc/[0-9]*/status | cut -d/ -f3)",
                [self.directory], limit: 10)
            guard status == 0 else {
                throw TestPostgresError("cannot send SIG\(name) to the server: \(String(describing: status))")
            }
        }

        /// Runs `command` in bash with `arguments` as $0, $1, … and standard input from /dev/null, killed after
        /// `limit` seconds (coreutils' timeout), on a thread of its own; returns its exit status (124 when it
        /// timed out), or nil when it could not be started.
        ///
        /// Not Foundation's Process: the server pg_ctl starts outlives pg_ctl, and Process then never sees
        /// the shell exit (the same trouble Dnsmasq avoids with posix_spawn).
        static func shell(_ command: String, _ arguments: [String], limit: Int) async -> Int32? {
            let argv =
                ["/usr/bin/timeout", "-s", "KILL", "\(limit)", "/bin/bash", "-c", command + " </dev/null"] + arguments
            return await withCheckedContinuation { continuation in
                Thread.detachNewThread {
                    var pid: pid_t = 0
                    let cArguments = argv.map { strdup($0) } + [nil]
                    defer { cArguments.forEach { free($0) } }
                    guard posix_spawn(&pid, argv[0], nil, nil, cArguments, environ) == 0 else {
                        continuation.resume(returning: nil)
                        return
                    }
                    var status: Int32 = 0
                    while waitpid(pid, &status, 0) == -1, errno == EINTR {}
                    let exited = status & 0x7F == 0
                    continuation.resume(returning: exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F))
                }
            }
        }

        /// Stops the server in `directory` and removes the folder (synchronously, for `atexit`).
        static func stop(directory: String) {
            _ = system(Self.stopCommand(directory))
        }

        /// The shell command that stops the server in `directory` at once and removes the folder.
        static func stopCommand(_ directory: String) -> String {
            let binaries = Self.binaries ?? "/usr/lib/postgresql/15/bin"
            let asPostgres = getuid() == 0 ? "runuser -u postgres -- " : ""
            return
                "\(asPostgres)\(binaries)/pg_ctl -D \(directory)/data -m immediate -w -t 30 stop >/dev/null 2>&1; rm -rf \(directory)"
        }
    }
}

/// Why a throwaway cluster could not be made or started (a plain error, so every test that needs it fails
/// with it, not only the first).
struct TestPostgresError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// The shared cluster's folder, stopped by the `atexit` handler.
nonisolated(unsafe) private var stopAtExit: String?
