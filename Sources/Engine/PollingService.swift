import ServiceLifecycle

/// PollingService runs a PollerPool as a service: it polls until graceful shutdown (SIGINT, SIGTERM) or
/// cancellation, then in-flight requests are cancelled and the monitor prints a last report.
public struct PollingService<C: Clock>: Service where C.Duration == Duration {
    public let pool: PollerPool<C>

    public init(pool: PollerPool<C>) {
        self.pool = pool
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.pool.run()
        }
        // Print a last report, as a user stopping the program expects to see where things stood.
        await self.pool.monitor.tick()
    }
}
