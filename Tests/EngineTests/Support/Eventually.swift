/// Whether `condition` holds within `limit`, checked every 10 ms: for effects that happen on another
/// thread (a socket closing), not a fixed sleep.
func eventually(within limit: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Whether `condition` holds within `limit`, checked every 10 ms: for state an actor holds (the monitor's
/// States), read with `await`.
func eventually(within limit: Duration = .seconds(5), checking condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}
