import Engine
import Testing

/// Issue 14 (N3): log lines said "1 polls and changes of this tick are not recorded", "1 URLs". A count in
/// words takes a noun (and a verb) that agrees with it.
@Suite struct CountedTests {
    @Test func oneTakesTheSingular_anyOtherCountThePlural() {
        #expect(1.counted("poll") == "1 poll")
        #expect(2.counted("poll") == "2 polls")
        #expect(0.counted("URL state") == "0 URL states")
        #expect(1.counted("poll or change", "polls and changes") == "1 poll or change")
        #expect(3.counted("poll or change", "polls and changes") == "3 polls and changes")
        #expect(1.agreeing("is", "are") == "is")
        #expect(0.agreeing("is", "are") == "are")
    }
}
