import NIOCore
import NIOPosix

extension ScriptHost {
    /// The one thread every ScriptHost runs on, and so the only thread that ever calls into Lua: an event
    /// loop of its own (a SwiftNIO `MultiThreadedEventLoopGroup` of one thread, used as a `SerialExecutor`,
    /// SE-0392), which carries no I/O. It is neither one of the pollers' event loops nor a thread of Swift's
    /// cooperative pool, so polls can run on the event loops (or the event loops can be the global executor,
    /// as in the `urlpoll` binary) while a hook never runs on an I/O thread, and a slow hook holds up Lua
    /// alone. Reloads' hosts share it: one Lua state runs at a time in the process.
    static let luaLoop: any EventLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()

    /// Whether the caller runs on the Lua thread (``luaLoop``).
    static var onLuaThread: Bool { Self.luaLoop.inEventLoop }

    /// The actor's jobs run on ``luaLoop``.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        Self.luaLoop.executor.asUnownedSerialExecutor()
    }
}
