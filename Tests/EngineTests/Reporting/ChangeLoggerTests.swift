import Engine
import Logging
import Testing

/// The `info` line per change (text mode).
@Suite struct ChangeLoggerTests {
    /// Issue 14 (N7): a `check` message of 1 MiB was logged whole in every change's line, though the
    /// store keeps 1 KiB of it. The line's detail is cut as the store's is.
    @Test func aChangesDetail_isCutToTheStoresLimit() async {
        let (logger, log) = RecordingLogHandler.make()
        let url = "http://127.0.0.1:9/a"
        let before = State(
            url: url, name: url, status: "200 OK", code: 200, health: .up, error: nil, detail: nil, errorCount: 0,
            latency: .zero, since: 0, checkedAt: 0)
        let after = State(
            url: url, name: url, status: "200 OK", code: 200, health: .down, error: "check",
            detail: String(repeating: "d", count: 1 << 20), errorCount: 1, latency: .zero, since: 1, checkedAt: 1)
        await ChangeLogger(logger: logger).changed(after, previous: before)
        let details = log.metadata.withLock { $0.map { $0["detail"].map { "\($0)" } ?? "" } }
        #expect(details.count == 1)
        #expect(details.first?.utf8.count ?? 0 <= String.detailLimit)
        #expect(details.first?.hasSuffix("…") == true)
    }
}
