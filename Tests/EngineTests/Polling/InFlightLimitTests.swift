@testable import Engine
import Testing

@Suite(.timeLimit(.minutes(2))) struct InFlightLimitTests {
    @Test func descriptorBudget_sharesTheSoftLimit_betweenPollsInFlightAndIdleConnections() {
        // Given: `ulimit -n 256`: 64 kept back, 192 for polls.
        let low = DescriptorBudget(limit: 256)
        #expect(low.forPolls == 192)
        #expect(low.idleConnections(wanted: 256) == 48)
        #expect(low.pollsInFlight(pollers: 2) == 144)
        #expect(low.pollsInFlight(pollers: 2) + low.idleConnections(wanted: 256) + DescriptorBudget.reserved <= 256)
        // Given: a generous limit: the defaults, or the pollers when more.
        let high = DescriptorBudget(limit: 1 << 20)
        #expect(high.idleConnections(wanted: 256) == 256)
        #expect(high.pollsInFlight(pollers: 2) == 1024)
        #expect(high.pollsInFlight(pollers: 5000) == 5000)
    }

    @Test func admit_parksWhatIsOverAnOriginsLimit_andFinishHandsItOn() async {
        // Given: 2 in flight per origin, 10 in all.
        let sut = InFlightLimit(maximum: 10, perHost: 2)
        let frozen = (1...3).map { Resource(Target(url: "http://Frozen:8080/\($0)")) }
        var admitted: [Resource] = []
        for resource in frozen {
            #expect(await sut.reserve())
            if let resource = sut.admit(resource) { admitted.append(resource) }
        }
        // Then: two in flight, the third parked, holding no slot; another origin is admitted.
        #expect(admitted.map(\.target.url) == ["http://Frozen:8080/1", "http://Frozen:8080/2"])
        #expect(sut.parkedCount == 1)
        #expect(await sut.reserve())
        #expect(sut.admit(Resource(Target(url: "http://healthy/"))) != nil)
        // When: a poll of the frozen origin ends, the parked one takes its place; then nothing is left.
        #expect(sut.finish(admitted[0].target)?.target.url == "http://Frozen:8080/3")
        #expect(sut.finish(admitted[1].target) == nil)
        #expect(sut.parkedCount == 0)
    }

    /// One origin never takes every slot, however few the descriptors allow. Before, at `ulimit -n 64` (6
    /// polls in flight) the per-origin limit (32 for 32 pollers) was cut only to 6, so 100 URLs on a frozen
    /// server held every slot and 200 healthy URLs made 568-627 of 1,400 polls due (issue 11).
    @Test func forPollers_whenDescriptorsAreFew_leavesSlotsThatOneOriginCannotTake() async {
        // Given: 32 pollers at `ulimit -n 64`.
        let sut = InFlightLimit.forPollers(32, descriptors: DescriptorBudget(limit: 64))
        #expect(sut.maximum == 6)
        // When: a frozen origin has more URLs due than there are slots.
        var admitted = 0
        for i in 1...10 {
            #expect(await sut.reserve())
            if sut.admit(Resource(Target(url: "http://frozen/\(i)"))) != nil { admitted += 1 }
        }
        // Then: it holds at most half the slots; the rest are a healthy origin's.
        #expect(admitted == 3)
        for i in 1...3 {
            #expect(await sut.reserve())
            #expect(sut.admit(Resource(Target(url: "http://healthy/\(i)"))) != nil)
        }
    }

    @Test func reserve_whenEverySlotIsTaken_waits_andCancellationEndsTheWait() async {
        let sut = InFlightLimit(maximum: 1, perHost: 1)
        #expect(await sut.reserve())
        let waiting = Task { await sut.reserve() }
        waiting.cancel()
        #expect(await waiting.value == false)
    }

    @Test func origin_isSchemeAndAuthority_lowerCased_withoutUserInformation() {
        #expect(Target(url: "http://User:pw@Example.COM:8080/a?b#c").origin == "http://example.com:8080")
        #expect(Target(url: "https://example.com").origin == "https://example.com")
    }
}
