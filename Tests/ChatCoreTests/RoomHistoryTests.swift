import Testing

@testable import ChatCore

@Suite struct RoomHistoryTests {
    let start = LogTime(milliseconds: 1_700_000_000_000)

    @Test func keepsTheNewestLinesUpToCapacity() {
        var history = RoomHistory<String>(capacity: 3)
        for index in 1...5 { history.append("line \(index)", at: start) }
        #expect(history.recent(at: start) == ["line 3", "line 4", "line 5"])
    }

    @Test func dropsLinesOlderThanTheWindow() {
        var history = RoomHistory<String>(capacity: 10, window: .seconds(300))
        history.append("old", at: start)
        history.append("new", at: start + .seconds(200))
        #expect(history.recent(at: start + .seconds(250)) == ["old", "new"])
        #expect(history.recent(at: start + .seconds(301)) == ["new"])
        #expect(history.recent(at: start + .seconds(600)) == [])
    }

    @Test func zeroCapacityKeepsNothing() {
        var history = RoomHistory<String>(capacity: 0)
        history.append("x", at: start)
        #expect(history.isEmpty)
    }
}
