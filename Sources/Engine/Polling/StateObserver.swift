/// StateObserver hears about every State the monitor receives.
public protocol StateObserver: Sendable {
    /// After every poll, with the URL's previous state (nil on its first poll).
    func polled(_ state: State, previous: State?) async
    /// When a URL's status or health changes (previous nil on its first result).
    func changed(_ state: State, previous: State?) async
    /// On every monitor tick, after the States heard before it.
    func ticked() async
}

extension StateObserver {
    public func polled(_ state: State, previous: State?) async {}
}

extension StateObserver {
    public func ticked() async {}
}
