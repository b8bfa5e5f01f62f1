/// StaleLeader tells, from an instance's own looks at who holds the report lock (one per `status_interval`
/// tick), when the leader stopped beating its heartbeat while keeping its session, the lock with it: a
/// process frozen (SIGSTOP, a suspended machine) or hung. Its heartbeat, which it beats every tick on the
/// same session, then stays the same look after look.
///
/// It counts looks, not time, and only this instance's own successful looks on consecutive ticks: after
/// PostgreSQL itself was away every heartbeat is old, and a leader that beats again within two ticks of it
/// answering is not taken for stale.
struct StaleLeader: Sendable {
    /// Looks in a row at the same leader with the same heartbeat after which it is stale: two whole ticks in
    /// which it did not beat.
    static let looks = 3

    private var seen: PostgresStore.Leader?
    private var count = 0

    /// A look at the lock's holder; true when it is stale. A holder with no heartbeat (not an urlpoll that
    /// names its sessions) is never stale.
    mutating func look(at leader: PostgresStore.Leader) -> Bool {
        guard leader.heartbeat != nil else {
            self.forget()
            return false
        }
        if leader == self.seen {
            self.count += 1
        } else {
            self.seen = leader
            self.count = 1
        }
        return self.count >= Self.looks
    }

    /// A tick without a look (a failure, missed ticks, or this instance leads): start again.
    mutating func forget() {
        self.seen = nil
        self.count = 0
    }
}
