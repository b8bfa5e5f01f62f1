import Engine
import Testing

/// Issue 14 (#7): check messages were kept and served in full (a 1 MiB message per change; `/status`
/// 12.5 MB for one URL). A change keeps at most ``Swift/String/detailLimit`` bytes, cut at a UTF-8
/// boundary with "…".
@Suite struct UTF8LimitTests {
    @Test func shortText_isKeptAsItIs() {
        #expect("refused".limited(toUTF8Bytes: 1_024) == "refused")
        #expect(String(repeating: "x", count: 1_024).limited(toUTF8Bytes: 1_024).utf8.count == 1_024)
    }

    @Test func longText_isCutAtAScalarBoundary_withAnEllipsis() {
        // "é" is 2 bytes: 1,021 bytes of room end inside one, which is left out whole.
        let text = String(repeating: "é", count: 600)
        let cut = text.limited(toUTF8Bytes: 1_024)
        #expect(cut.utf8.count <= 1_024)
        #expect(cut.hasSuffix("…"))
        #expect(cut == String(repeating: "é", count: 510) + "…")
    }

    @Test func aChangesDetail_isAtMostTheLimit() {
        let body = String(repeating: "<html>", count: 200_000)
        let state = State(
            url: "http://127.0.0.1:9/", name: "n", status: "500 Internal Server Error", code: 500, health: .down,
            error: "status 500", detail: body, errorCount: 1, latency: .zero, since: 0, checkedAt: 0)
        let change = HistoryChange(state, previous: nil)
        #expect((change.detail?.utf8.count ?? 0) <= String.detailLimit)
        #expect(change.detail?.hasPrefix("<html><html>") == true)
        #expect(change.detail?.hasSuffix("…") == true)
    }
}
