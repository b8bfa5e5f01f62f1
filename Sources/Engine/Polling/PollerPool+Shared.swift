import AsyncAlgorithms
import FoundationEssentials
import Logging
import PostgresNIO

/// The pool's run when it shares its schedule with other instances (``SharedSchedule``): three tasks and
/// the polls.
///
/// - The claimer takes due rows from PostgreSQL while it has room for polls in flight, starts a poll for
///   each, and sleeps until the next row falls due (``SharedSchedule/wakeInterval`` at most).
/// - Each poll, on a task of its own, probes, judges (`check`), records the State and asks the backoff
///   (the script's `backoff` hook) for the next sleep, then hands its completion to the writer.
/// - The writer writes the completions gathered since its last write in one statement, and only for the
///   rows whose write counted (this instance still held their version and claim) tells the monitor, whose
///   observers run `on_result`, `on_change` and the alerts: a transition is alerted by one instance at most.
///   A write that fails (PostgreSQL restarting) is tried again, with the completions that came since, with
///   backoff, so no result this instance still holds the lease of is lost.
/// - The leader loop beats the heartbeat every `status_interval`, tries the report lock on a connection of
///   its own, reads the fleet's states written since its last read into the monitor (``FleetView``), and,
///   while it holds the lock, reports them.
extension PollerPool {
    /// The pool is about to be stopped for a reload (called just before its task is cancelled): with a shared
    /// schedule, its polls in flight finish and are written back before it stops (``SharedSchedule``).
    public func replacing() {
        self.schedule?.replacing.set()
    }

    func runShared(_ schedule: SharedSchedule) async {
        let store = schedule.store
        let logger = store.logger
        // The store's one outage: a reload's URL list is told to the outage the pool before was in (or had
        // yet to notice), as are the claims that follow it: its failure, and the store answering again.
        let outage = store.outage
        outage.shows(in: schedule.metrics)
        if schedule.syncsOnStart {
            await self.syncRetrying(schedule, outage: outage)
        }
        await self.monitor.reporting(false)
        let outbox = Outbox()
        let capacity = self.maximumInFlight ?? DescriptorBudget.current.pollsInFlight(pollers: self.settings.pollers)
        let byKey = Dictionary(self.targets.map { ($0.historyKey, $0) }, uniquingKeysWith: { first, _ in first })
        await withDiscardingTaskGroup { group in
            group.addTask {
                // A fleet already polling: this instance shows its states from its start (/metrics, /status,
                // /healthz's first pass), not from its first tick.
                if let fleet = try? await store.fleet() {
                    await self.monitor.seed(HistoryKey.match(fleet, to: self.targets))
                }
            }
            group.addTask { await self.lead(schedule, outage: outage) }
            group.addTask {
                await Self.shielded(schedule) { await self.write(outbox, schedule: schedule, outage: outage) }
            }
            var failures = 0
            var script = ScriptWatch()
            // Sweeps of leases this instance holds and does not use, owed after a failed round (a claim given
            // up may have run on the server after all): the first two rounds that succeed make one each.
            var sweeps = 0
            var gap = Gap(replacesAPool: schedule.replacesAPool)
            while !Task.isCancelled {
                let room = min(capacity - outbox.inFlight, 1_000)
                var claimed: [PostgresStore.Claim] = []
                var wait = SharedSchedule.wakeInterval
                do throws(HistoryError) {
                    if room > 0 {
                        claimed = try await store.claim(
                            limit: room, scriptHash: schedule.scriptHash, now: schedule.databaseTime?())
                    }
                    if let at = claimed.first?.claimedAt { gap.look(at: at) }
                    for claim in claimed {
                        guard let target = byKey[claim.key] else { continue }
                        let lateness = gap.lateness(of: claim)
                        outbox.started(claim.id)
                        group.addTask {
                            await Self.shielded(schedule) {
                                if let completion = await self.pollClaimed(claim, target: target, lateness: lateness) {
                                    outbox.put(completion)
                                } else {
                                    outbox.abandoned(claim.id)
                                }
                            }
                        }
                    }
                    if sweeps > 0 {
                        sweeps -= 1
                        let released = try await store.releaseLeases(keeping: outbox.held)
                        if released > 0 {
                            logger.notice(
                                "released \(released.counted("lease")) that a claim given up while \(store.location) did not answer took when it ran after all; those URLs are claimed again now"
                            )
                            continue
                        }
                    }
                    if let words = gap.drained() { logger.notice("\(words)") }
                    if room > 0, claimed.count == room { continue }  // more may be due now
                    let (next, now, hash) = try await store.nextDue(now: schedule.databaseTime?())
                    gap.look(at: now)
                    if script.due(at: now, scheduleFollows: hash) {
                        try await self.follow(schedule, watch: &script, at: now)
                    }
                    failures = 0
                    outage.answered()
                    if room <= 0 {
                        wait = .milliseconds(50)
                    } else if let next {
                        wait = min(wait, max(TimerQueue.resolution, .seconds(checked: max(0, next - now))))
                    }
                } catch {
                    failures += 1
                    sweeps = 2
                    outage.failed(error.description)
                    wait = Self.retryDelay(after: failures)
                }
                do { try await self.clock.sleep(for: wait, tolerance: nil) } catch { break }
            }
            outbox.close()
            group.cancelAll()
        }
    }

    /// What the claimer knows of the script the schedule follows (``follow(_:watch:at:)``).
    struct ScriptWatch {
        /// When it last beat (database time), and the script the schedule followed then.
        var beatAt: Double?
        var seen: PostgresStore.Previous?
        /// Whether this instance has said that the schedule follows another script (and not yet that it
        /// follows this one again).
        var followsOther = false

        /// Whether to beat now: every ``SharedSchedule/beatInterval``, and at once when the schedule's
        /// script (`scheduleFollows`, as the last look read it) is not the one seen at the last beat.
        func due(at now: Double, scheduleFollows: String?) -> Bool {
            guard let beatAt else { return true }
            return now - beatAt >= SharedSchedule.beatInterval.seconds || scheduleFollows != self.seen?.scriptHash
        }
    }

    /// Beats the heartbeat and looks at which script the schedule follows: when no live instance runs it and
    /// this instance's is the newest live script, lists this script's URLs again (they poll again, with no
    /// SIGHUP); says each change of the script followed in words naming the instance that loaded it, and
    /// shows it in `urlpoll_cluster_script_current` and `/healthz`.
    private func follow(_ schedule: SharedSchedule, watch: inout ScriptWatch, at now: Double)
        async throws(HistoryError)
    {
        let store = schedule.store
        let mine = schedule.scriptHash
        let alive = SharedSchedule.aliveLimit.seconds
        var found = try await store.beat(scriptHash: mine, alive: alive, now: schedule.databaseTime?())
        watch.beatAt = now
        if let followed = found.schedule, followed.scriptHash != mine, !found.followed, found.newest == mine,
            let previous = try await store.adopt(
                SharedSchedule.listings(for: self.targets, settings: self.settings), scriptHash: mine,
                alive: alive, now: schedule.databaseTime?())
        {
            store.logger.warning(
                "no live instance runs the script \(store.location) followed (loaded by \(previous.loader)): it stopped, or has been silent for \(formatSeconds(alive)) s; the fleet follows this instance's script (\(store.instance)) from now on, the newest one running, and its URLs are listed and polled again (\(SharedSchedule.rule))"
            )
            found = try await store.beat(scriptHash: mine, alive: alive, now: schedule.databaseTime?())
            // Said: polling resumes here.
            watch.followsOther = false
        }
        guard let followed = found.schedule else { return }
        let current = followed.scriptHash == mine
        if !current, !watch.followsOther || watch.seen?.scriptHash != followed.scriptHash {
            store.logger.error(
                "the shared schedule in \(store.location) follows another script than this instance's (\(store.instance)), loaded by \(followed.loader); this instance polls nothing while a live instance runs that one, takes over within \(formatSeconds(alive)) s once none does, or joins it when it loads the same script (SIGHUP) (\(SharedSchedule.rule))"
            )
        } else if current, watch.followsOther {
            store.logger.notice(
                "the shared schedule in \(store.location) follows this instance's script again (loaded by \(followed.loader)); polling resumes"
            )
        }
        watch.followsOther = !current
        watch.seen = followed
        schedule.current.set(current)
        schedule.metrics?.script(current: current)
        schedule.metrics?.problem(
            .script,
            current
                ? nil
                : "the shared schedule follows another script than this instance's, loaded by \(followed.loader): this instance polls nothing"
        )
    }

    /// Runs `body` on a task of its own that the caller's cancellation cancels too, unless the pool is
    /// being replaced by a reload's (``replacing()``): then it runs to its end (a poll in flight, the writer
    /// until every poll in flight is written back).
    private static func shielded(_ schedule: SharedSchedule, _ body: @escaping @Sendable () async -> Void) async {
        let task = Task { await body() }
        await withTaskCancellationHandler {
            await task.value
        } onCancel: {
            if !schedule.replacing.isSet { task.cancel() }
        }
    }

    /// How long to wait after `failures` failed tries to reach PostgreSQL: 0.1 s doubling to 5 s.
    static func retryDelay(after failures: Int) -> Duration {
        .milliseconds(min(5_000, 100 << min(failures - 1, 6)))
    }

    /// Lists the script's URLs in the schedule (a reload's new pool), trying again with backoff until it
    /// works or the pool is stopped; tells `outage` what each try met, so that a failure is said once and
    /// the store answering again too.
    private func syncRetrying(_ schedule: SharedSchedule, outage: StoreOutage) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let previous = try await schedule.store.sync(
                    SharedSchedule.listings(for: self.targets, settings: self.settings),
                    scriptHash: schedule.scriptHash, now: schedule.databaseTime?())
                if let words = SharedSchedule.takeover(
                    from: previous, scriptHash: schedule.scriptHash, store: schedule.store)
                {
                    schedule.store.logger.warning("\(words)")
                }
                outage.answered()
                return
            } catch {
                failures += 1
                outage.failed(error.description)
                do { try await self.clock.sleep(for: Self.retryDelay(after: failures), tolerance: nil) } catch {
                    return
                }
            }
        }
    }

    /// Polls one claimed row: probe, `check`, record, backoff. Nil when the poll was cut short by shutdown.
    private func pollClaimed(_ claim: PostgresStore.Claim, target: Target, lateness: Double) async
        -> PostgresStore.Completion?
    {
        var held = claim.state
        held?.rawURL = target.url
        var resource = Resource(target, resuming: held)
        resource.lateness = .seconds(checked: lateness)
        let result = await self.prober.probe(target, settings: self.settings)
        guard !Task.isCancelled else { return nil }
        if case .failure(let failure) = result.outcome, failure.isLocal {
            // Not the target's failure: no state, polled again soon.
            return PostgresStore.Completion(
                claim: claim, state: nil, polled: false, delay: Self.localRetryDelay.seconds)
        }
        var verdict: Verdict?
        if let checker = self.checker, target.captureBody, result.isJudged {
            verdict = await checker.check(target, result)
            guard !Task.isCancelled else { return nil }
        }
        let state = resource.record(result, verdict: verdict, at: self.now())
        let delay = await self.policy.delay(for: resource, settings: self.settings)
        return PostgresStore.Completion(claim: claim, state: state, polled: true, delay: delay.seconds)
    }

    /// Writes completions back as they come, in one statement per batch; tells the monitor of each whose
    /// write counted.
    private func write(_ outbox: Outbox, schedule: SharedSchedule, outage: StoreOutage) async {
        let store = schedule.store
        var failures = 0
        // Completions taken from the outbox and not yet written, by row (a newer claim of a row replaces an
        // older one: only the newer can count).
        var pending: [Int64: PostgresStore.Completion] = [:]
        var signals = outbox.signals.makeAsyncIterator()
        var finished = false
        while !finished || !pending.isEmpty {
            if pending.isEmpty {
                finished = await signals.next() == nil
            }
            for completion in outbox.take() {
                if let other = pending[completion.claim.id] {
                    // Only the newer claim of a row can count; the older is done with.
                    outbox.finished(completion.claim.id)
                    if other.claim.claims > completion.claim.claims { continue }
                }
                pending[completion.claim.id] = completion
            }
            guard !pending.isEmpty else { continue }
            let batch = Array(pending.values)
            do {
                let won = try await store.complete(batch, now: schedule.databaseTime?())
                pending = [:]
                failures = 0
                outage.answered()
                for completion in batch {
                    outbox.finished(completion.claim.id)
                    guard won.contains(completion.claim.id) else {
                        store.logger.debug(
                            "\(completion.claim.key): another instance holds this URL now; this poll's result is not used"
                        )
                        continue
                    }
                    guard completion.polled, var state = completion.state else { continue }
                    var previous = completion.claim.state
                    let target = state.rawURL
                    previous?.rawURL = target
                    state.rawURL = target
                    await self.monitor.update(state, previous: previous)
                }
            } catch {
                failures += 1
                outage.failed("\(error.description) (\(batch.count.counted("poll")) not yet written back)")
                if Task.isCancelled { return }
                if outbox.isClosed, failures >= 2 {
                    // Stopping for a reload, PostgreSQL not answering: the leases end by themselves.
                    store.logger.warning(
                        "\(batch.count.counted("poll")) made before the reload \(batch.count.agreeing("is", "are")) not written back: \(store.location) does not answer; \(batch.count.agreeing("its URL is polled again when its lease ends", "their URLs are polled again when their leases end"))"
                    )
                    return
                }
                do { try await self.clock.sleep(for: Self.retryDelay(after: failures), tolerance: nil) } catch {
                    return
                }
            }
        }
    }

    /// Every `status_interval`: takes (or keeps) the report lock and beats the heartbeat on a connection of
    /// its own, and, while this instance holds the lock, reads the whole fleet's states into the monitor and
    /// reports them.
    ///
    /// The lock lives as long as its connection's session: a server that restarts takes it with it. The
    /// connection found closed, or a statement on it failing, it is replaced at once and the lock tried
    /// again on the new one in the same tick, so report runs again (here or on another instance) within one
    /// `status_interval` of the server answering. Nothing here waits on the pool, whose reconnection backs
    /// off for as long as the server was away.
    ///
    /// A leader that stops beating its heartbeat but keeps its session (a frozen or hung process) keeps the
    /// lock: another instance that sees its heartbeat unchanged for ``StaleLeader/looks`` ticks in a row ends
    /// that session and takes the lock (``PostgresStore/takeOver(from:on:)``). The old leader, once it runs
    /// again, finds its session ended at its next tick and stops reporting; a tick that took longer than a
    /// `status_interval` between its look at the lock and its report (the process was frozen in between)
    /// does not report.
    ///
    /// A reload's pool takes the session the pool before it left (``PostgresStore/leave(_:leading:)``), and
    /// the lock with it, and ticks at once: a reload neither gives report up nor misses a tick.
    private func lead(_ schedule: SharedSchedule, outage: StoreOutage) async {
        let store = schedule.store
        let left = store.takeLeftSession()
        var session = left?.session
        var leading = left?.leading ?? false
        // The session the pool before left is watched by this pool's outage: the one that watched it is stopped.
        if let session { Self.watch(session, store: store, outage: outage) }
        var stale = StaleLeader()
        // The stale leader whose session this instance was not allowed to end, once said.
        var refused: PostgresStore.Leader?
        let alive = self.settings.statusInterval.seconds * 3
        // The fleet's states, read whole at the start and after a reconnect, else only the rows written
        // since the last read (FleetView).
        var view = FleetView(fullReadEvery: FleetView.fullReadEvery(statusInterval: self.settings.statusInterval))
        let rawURLs = Dictionary(self.targets.map { ($0.historyKey, $0.url) }, uniquingKeysWith: { first, _ in first })
        // The ticks go on from the pool before's: those that fell due while a reload listed its URLs (a
        // frozen PostgreSQL) are missed, and counted so.
        var timer = Ticks(
            every: self.settings.statusInterval, clock: self.clock, atOnce: left != nil,
            after: schedule.replacesAPool ? store.takeLeftTick() as? C.Instant : nil)
        await withDiscardingTaskGroup { group in
            ticks: while let missed = await timer.next() {
                var leads = false
                var instances: Int?
                var fleet: PostgresStore.FleetRead?
                var readTook = Duration.zero
                var tries = 0
                var looked = false
                var ended = false
                var lookedAt = self.clock.now
                if missed > 0 { stale.forget() }
                while tries < 2, !Task.isCancelled {
                    tries += 1
                    if let closed = session, closed.isClosed {
                        // Ended by the server: a restart (the watch says so), or another instance that took
                        // report over. A new connection is tried at once; only if it fails is that an outage.
                        ended = true
                        session = nil
                    }
                    let fresh = session == nil
                    do throws(HistoryError) {
                        let current: PostgresConnection
                        if let session {
                            current = session
                        } else {
                            current = try await store.connectAlone()
                        }
                        if fresh {
                            Self.watch(current, store: store, outage: outage)
                            view.startOver()
                        }
                        session = current
                        if schedule.current.isSet {
                            leads = try await store.lead(on: current)
                        } else {
                            // `report` is for an instance that runs the script the fleet follows.
                            if leading { try await store.yieldLead(on: current) }
                            leads = false
                        }
                        lookedAt = self.clock.now
                        if !leads, schedule.current.isSet, let leader = try await store.reportLeader(on: current) {
                            looked = true
                            if stale.look(at: leader) {
                                switch try await store.takeOver(from: leader, on: current) {
                                case .taken:
                                    leads = true
                                    refused = nil
                                    store.logger.warning(
                                        "took report over from \(leader.instance): its heartbeat had not moved for \(StaleLeader.looks - 1) status intervals while its session held the report lock (a frozen or hung process); its session was ended"
                                    )
                                case .lost:
                                    refused = nil
                                case .refused(let words) where refused != leader:
                                    // Said once per leader: tried again every tick, in silence.
                                    refused = leader
                                    store.logger.error(
                                        "cannot take report over from \(leader.instance), whose heartbeat has not moved for \(StaleLeader.looks - 1) status intervals while its session holds the report lock (a frozen or hung process): \(words); no instance runs report until it beats again or its session ends"
                                    )
                                case .refused:
                                    break
                                }
                            }
                        }
                        instances = try await store.heartbeat(
                            scriptHash: schedule.scriptHash, alive: alive, now: schedule.databaseTime?(), on: current)
                        // Every instance, leading or not: its /metrics, /status and /healthz show the fleet's.
                        let readStart = ContinuousClock.now
                        fleet = try await store.fleet(since: view.since, on: current)
                        readTook = readStart.duration(to: .now)
                        outage.answered()
                        break
                    } catch {
                        // Stopping: the statement failed by urlpoll's own doing, and the session is closed below,
                        // after the outage is told to say nothing more.
                        if Task.isCancelled { break ticks }
                        leads = false
                        if let failed = session { await store.close(failed) }
                        session = nil
                        // A statement on a session of earlier ticks that fails (its server restarted, or it was
                        // ended) is tried once more on a new connection; a new connection that fails is an outage,
                        // and is not tried again before the next tick.
                        if fresh {
                            outage.failed(error.description)
                            break
                        }
                        ended = true
                    }
                }
                if Task.isCancelled { break ticks }
                if !looked { stale.forget() }
                if leads != leading {
                    store.logger.info(
                        leads
                            ? "this instance (\(store.instance)) runs report for the fleet"
                            : ended && session != nil
                                ? "this instance (\(store.instance)) no longer runs report: its session was ended (another instance took report over, having seen no heartbeat from it for \(StaleLeader.looks - 1) status intervals, or the server restarted)"
                                : "this instance (\(store.instance)) no longer runs report")
                    leading = leads
                }
                // Frozen between its look at the lock and now: another instance may lead by now; not reported.
                let late = lookedAt.duration(to: self.clock.now) >= self.settings.statusInterval
                schedule.metrics?.beat(instances: instances, leading: leads)
                if let fleet {
                    let mergeStart = ContinuousClock.now
                    let (changed, gone) = view.merge(fleet)
                    await self.monitor.seed(
                        changed.compactMap { state in
                            rawURLs[state.historyKey].map { url in
                                var state = state
                                state.rawURL = url
                                return state
                            }
                        })
                    if !gone.isEmpty { await self.monitor.forget(gone.compactMap { rawURLs[$0.historyKey] }) }
                    store.logger.debug(
                        "read the fleet's states: \(fleet.rows.count) rows (\(fleet.full ? "a full read" : "written since the last read")) in \(formatSeconds((readTook.seconds * 1000).rounded() / 1000)) s, \(changed.count) changed, \(gone.count) gone; merged in \(formatSeconds((mergeStart.duration(to: .now).seconds * 1000).rounded() / 1000)) s"
                    )
                }
                await self.monitor.reporting(leads && !late)
                await self.monitor.skipped(missed + (late ? 1 : 0))
                // The report runs beside the loop: a `report` hook that waits keeps no heartbeat back.
                if !late, let report = await self.monitor.tickBeside() { group.addTask { await report() } }
            }
            group.cancelAll()
        }
        if schedule.replacing.isSet {
            store.leaveTick(timer.lastTick)
        } else {
            outage.stop()
        }
        await self.monitor.reporting(leading)
        // Kept for a reload's pool; closed when the store stops.
        if let session, !session.isClosed { await store.leave(session, leading: leading) }
    }

    /// When the server closes `connection` (a restart ends its sessions at once), tries a new connection, and
    /// tells `outage` when that fails too, so that an outage is said within a second, not at the next
    /// statement's time limit. A session ended on its own (another instance took report over) is no outage.
    private static func watch(_ connection: PostgresConnection, store: PostgresStore, outage: StoreOutage) {
        connection.closeFuture.whenComplete { _ in
            Task {
                do {
                    let probe = try await store.connectAlone()
                    await store.close(probe)
                } catch {
                    outage.failed("\(store.location): the server closed the connection (it restarted or stopped)")
                }
            }
        }
    }
}

extension PollerPool {
    /// The claimer's gaps: times when it did not look at the schedule for longer than
    /// ``SharedSchedule/gapLimit`` (its start, PostgreSQL not answering). A row that could be claimed before
    /// the latest gap ended was overdue because of the gap, not because the engine fell behind: it is
    /// polled as soon as it is claimed with a lateness of 0, counted, and the count said in words once the
    /// rows claimed no longer include any. Every other row's lateness counts from when it could first be
    /// claimed (``PostgresStore/Claim/claimable``: its due time, or an expired lease's end after a failover).
    struct Gap {
        /// The database time of the last successful look, and of the end of the latest gap.
        private var last: Double?
        private var end: Double?
        private var reason = ""
        private var overdue = 0
        private var overdueNow = 0
        /// Whether the first look ends no gap: a reload's pool takes over from one that looked until now.
        private var continues: Bool

        /// - Parameter replacesAPool: The pool takes over from one that ran the schedule until now (a reload).
        init(replacesAPool: Bool) {
            self.continues = replacesAPool
        }

        /// A successful look at the schedule at database time `at`.
        mutating func look(at: Double) {
            defer { self.last = at }
            if self.continues {
                self.continues = false
                return
            }
            if let last = self.last, at - last <= SharedSchedule.gapLimit.seconds { return }
            self.end = at
            self.reason =
                self.last.map {
                    "\(formatSeconds((at - $0).rounded())) s in which this instance could not reach the schedule"
                }
                ?? "this instance started (they fell due while no instance polled them)"
        }

        /// The lateness of `claim`, in seconds.
        mutating func lateness(of claim: PostgresStore.Claim) -> Double {
            if let end = self.end, claim.claimable < end - SharedSchedule.wakeInterval.seconds {
                self.overdue += 1
                self.overdueNow += 1
                return 0
            }
            return max(0, claim.claimedAt - claim.claimable)
        }

        /// After a round of claims: once a round claims no row overdue because of the gap, what to say
        /// about the ones that were (nil when there is nothing to say).
        mutating func drained() -> String? {
            defer { self.overdueNow = 0 }
            guard self.overdueNow == 0, self.overdue > 0 else { return nil }
            defer { self.overdue = 0 }
            return
                "\(self.overdue.counted("URL")) \(self.overdue.agreeing("was", "were")) overdue after \(self.reason); each was polled as soon as it was claimed, and that wait is not counted as lateness"
        }
    }
}
