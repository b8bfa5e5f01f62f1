import NIOCore

/// EventLoopExecutor runs tasks on one SwiftNIO event loop: a `TaskExecutor` (SE-0417) for
/// `addTask(executorPreference:)`. A poller and its polls run there, so a poll's request is written, and its
/// response picked up, on the thread that does the I/O, with no wake-up of another thread in between.
///
/// Only for code that never blocks: no Lua (``ScriptHost`` runs on a thread of its own, and its actor's
/// executor wins over this preference), no file or database I/O.
final class EventLoopExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// One executor per loop of `group`, in the group's order; none without a group.
    static func each(of group: (any EventLoopGroup)?) -> [EventLoopExecutor] {
        guard let group else { return [] }
        return group.makeIterator().map { EventLoopExecutor($0) }
    }
}
