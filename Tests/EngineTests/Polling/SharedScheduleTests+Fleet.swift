import Engine
import Foundation
import Logging
import Synchronization
import Testing

/// Which script a fleet follows, what each instance says about it, and what each shows of the fleet.
extension SharedScheduleTests {
    /// The requests `server` had for the cluster's own URLs (`/u1`, `/u2`, …).
    static func fleetPolls(_ server: RecordingServer) -> Int {
        server.requests.filter { $0.path.hasPrefix("/u") }.count
    }

    @Test(arguments: [true, false])
    func instanceOnAnotherScript_killedOrStopped_theFleetPollsItsURLsAgainWithinOneLease(killed: Bool)
        async throws
    {
        // Given: 4 URLs polled every 10 s (timeout 5 s: a lease of 15 s) by a and b, running script s1.
        let server = try RecordingServer.keepAlive()
        let urls = (1...4).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 10)) { cluster in
            let names = ["a", "b"]
            let metrics = names.map { _ in EngineMetrics() }
            let logs = names.map { _ in RecordingLogHandler.make() }
            var instances: [Instance] = []
            for i in names.indices {
                instances.append(
                    try cluster.start(
                        names[i], logger: logs[i].0, script: "s1",
                        metrics: ClusterMetrics(metrics: metrics[i], instance: names[i])))
            }
            try await cluster.settle(sleepers: 4)
            #expect(Self.fleetPolls(server) == 4)
            // When: instance x starts on another script (one other URL): the newest script loaded wins.
            _ = try cluster.start("x", script: "one", targets: [Target(url: "\(server.url)/one")])
            try await cluster.settle(sleepers: 6)
            for _ in 1...12 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 6)
            }
            // Then: a and b poll nothing while x runs, and each says so naming x, in its log, its gauge and
            // its /healthz.
            #expect(Self.fleetPolls(server) == 4)
            #expect(server.requests.contains { $0.path == "/one" })
            for i in names.indices {
                let said = logs[i].1.all.filter { $0.contains("follows another script than this instance's") }
                #expect(said.count == 1, "\(logs[i].1.all)")
                #expect(said.first?.hasPrefix("error: ") == true)
                #expect(said.first?.contains("loaded by instance x") == true, "\(said)")
                #expect(
                    metrics[i].registry.emitToString().contains(
                        "urlpoll_cluster_script_current{urlpoll_instance=\"\(names[i])\"} 0"))
                let health = metrics[i].health(expected: 0, polled: 0)
                #expect(health?.contains("follows another script") == true, "\(health ?? "ok")")
            }
            // When: x is killed (its heartbeat stops) or stopped cleanly (its row goes at once).
            if killed { await cluster.kill("x") } else { await cluster.stop("x") }
            // Then: within one lease, a or b takes the fleet back for s1: its URLs listed and polled again,
            // with no SIGHUP.
            var waited = 0
            while Self.fleetPolls(server) < 8, waited < 15 {
                cluster.clock.advance(by: .seconds(1))
                waited += 1
                try await cluster.settle(sleepers: 4)
            }
            #expect(Self.fleetPolls(server) == 8, "waited \(waited) s")
            #expect(waited <= (killed ? 11 : 3), "waited \(waited) s")
            let takeovers = logs.flatMap { $0.1.all.filter { $0.contains("no live instance runs the script") } }
            #expect(takeovers.count == 1, "\(takeovers)")
            #expect(takeovers.first?.contains("loaded by instance x") == true, "\(takeovers)")
            // And: the rows listed again were due when they were listed again, not when x took the fleet:
            // the wait for x to go is no lateness ("cannot keep up", /healthz 503).
            let after = instances.flatMap(\.polls.states).filter { $0.polls > 1 }
            #expect(after.count == 4)
            #expect(after.allSatisfy { $0.lateness <= .seconds(1) }, "\(after.map(\.lateness))")
            for i in names.indices {
                #expect(metrics[i].health(expected: 0, polled: 0) == nil)
                #expect(
                    metrics[i].registry.emitToString().contains(
                        "urlpoll_cluster_script_current{urlpoll_instance=\"\(names[i])\"} 1"))
            }
            #expect(
                logs.filter { $0.1.all.contains { $0.contains("follows this instance's script again") } }.count == 1)
            #expect(
                try await TestPostgres.column(
                    cluster.url, "SELECT count(*) FROM urlpoll_targets WHERE retired", as: Int64.self)
                    == [1])
        }
    }

    @Test func reloadOntoAnotherScript_warnsNamingTheInstanceWhoseScriptItReplaced() async throws {
        // Given: instance a runs script s1.
        let server = try RecordingServer.keepAlive()
        let urls = (1...2).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 10)) { cluster in
            _ = try cluster.start("a", script: "s1")
            try await cluster.settle(sleepers: 2)
            // When: instance b reloads (SIGHUP) onto script s2.
            let (logger, log) = RecordingLogHandler.make()
            _ = try cluster.start("b", logger: logger, reloaded: true, script: "s2")
            try await cluster.settle(sleepers: 4)
            // Then: b says whose script it replaced, as it does at its start.
            let said = log.all.filter { $0.contains("followed another script") }
            #expect(said.count == 1, "\(log.all)")
            #expect(said.first?.hasPrefix("warning: ") == true)
            #expect(said.first?.contains("loaded by instance a") == true, "\(said)")
        }
    }

    @Test func everyInstance_showsTheFleetsStates_afterOneStatusInterval_notOnlyTheURLsItPolled() async throws {
        // Given: 4 URLs on 2 instances that each poll at most 2 at a time, reporting every 5 s.
        let server = try RecordingServer.keepAlive()
        let urls = (1...4).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 60, statusInterval: 5)) { cluster in
            let metrics = [EngineMetrics(), EngineMetrics()]
            let instances = try ["a", "b"].indices.map { i in
                try cluster.start(
                    ["a", "b"][i], maximumInFlight: 2,
                    metrics: ClusterMetrics(metrics: metrics[i], instance: ["a", "b"][i]))
            }
            try await cluster.settle(sleepers: 4)
            #expect(instances.allSatisfy { $0.polls.states.count < 4 })
            // When: one status interval passes.
            for _ in 1...5 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 4)
            }
            // Then: each instance, leader or not, holds all 4 URLs' states (what /metrics and /status show),
            // the same ones, and its /healthz says the first pass is done.
            var seen: [[String: Double]] = []
            for (instance, metrics) in zip(instances, metrics) {
                let states = await instance.pool.monitor.statesByURL()
                #expect(states.count == 4)
                #expect(metrics.health(expected: 4, polled: states.count) == nil)
                seen.append(states.mapValues(\.checkedAt))
            }
            #expect(seen[0] == seen[1])
        }
    }

    @Test func instanceStoppedMidPoll_releasesItsLeasesAndRemovesItsRow_soOthersPollAtOnce() async throws {
        // Given: 6 URLs (a lease of 15 s) on a server that holds the first 6 requests for 4 s.
        let served = Mutex(0)
        let server = try RecordingServer { request in
            let n = served.withLock {
                $0 += 1
                return $0
            }
            return (n <= 6 ? [.pause(.seconds(4))] : []) + [.ok(request)]
        }
        let urls = (1...6).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 60)) { cluster in
            _ = try cluster.start("a")
            #expect(await eventually(within: .seconds(5)) { server.requests.count == 6 })
            // When: a is stopped cleanly (SIGTERM) with its 6 polls in flight.
            await cluster.stop("a")
            // Then: its leases are released and its row is gone.
            #expect(try await cluster.leased() == 0)
            #expect(
                try await TestPostgres.column(cluster.url, "SELECT id FROM urlpoll_instances", as: String.self).isEmpty)
            // And b polls the 6 URLs at once, not after a's leases would have expired.
            let b = try cluster.start("b")
            try await cluster.settle(sleepers: 2)
            #expect(server.requests.count == 12)
            #expect(b.polls.states.count == 6)
        }
    }

    @Test func leaderOnAScriptNoLongerFollowed_givesUpReport_toAnInstanceRunningTheFleetsScript() async throws {
        // Given: a leads report (every 2 s) on script s1.
        let server = try RecordingServer.keepAlive()
        let urls = (1...2).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 10, statusInterval: 2)) { cluster in
            let a = try cluster.start("a", script: "s1")
            try await cluster.settle(sleepers: 2)
            // Several ticks: each one takes the (re-entrant) lock again on the same session.
            for _ in 1...8 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 2)
            }
            #expect(a.reports.count == 4)
            // When: x starts on another script, which the fleet follows from then on.
            let x = try cluster.start("x", script: "one", targets: [Target(url: "\(server.url)/one")])
            try await cluster.settle(sleepers: 4)
            for _ in 1...6 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 4)
            }
            // Then: a no longer reports its stale states; x, which runs the fleet's script, reports.
            let reported = a.reports.count
            #expect(x.reports.count >= 1)
            for _ in 1...4 {
                cluster.clock.advance(by: .seconds(1))
                try await cluster.settle(sleepers: 4)
            }
            #expect(a.reports.count == reported)
            #expect(x.reports.count >= 2)
            // The report lock is held by x's session only.
            let holders = try await TestPostgres.column(
                cluster.url,
                """
                SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """, as: String.self)
            #expect(holders == ["x"])
        }
    }

    @Test func instanceJoiningARunningFleet_showsTheFleetsStatesFromItsStart() async throws {
        // Given: a has polled the 4 URLs (every 60 s; report every 10 s).
        let server = try RecordingServer.keepAlive()
        let urls = (1...4).map { "\(server.url)/u\($0)" }
        try await Self.withCluster(urls: urls, settings: Self.settings(interval: 60, statusInterval: 10)) { cluster in
            _ = try cluster.start("a")
            try await cluster.settle(sleepers: 2)
            #expect(server.requests.count == 4)
            // When: b joins, and polls nothing yet (nothing is due), before its first tick.
            let metrics = EngineMetrics()
            let b = try cluster.start("b", metrics: ClusterMetrics(metrics: metrics, instance: "b"))
            try await cluster.settle(sleepers: 4)
            // Then: its /healthz's first pass is the fleet's, done, and it shows the 4 URLs' states.
            let deadline = ContinuousClock.now + .seconds(5)
            var shown = 0
            while ContinuousClock.now < deadline {
                shown = await b.pool.monitor.statesByURL().count
                if shown == 4 { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(shown == 4)
            #expect(metrics.health(expected: 4, polled: shown) == nil)
            #expect(b.polls.states.isEmpty)
        }
    }
}
