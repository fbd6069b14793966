import Testing

@testable import chat_bench

/// How chat-bench tells losses, late lines and duplicates apart.
@Suite struct SequenceCheckTests {
    @Test func aCleanStreamIsAllInOrder() {
        var check = SequenceCheck(senders: 2)
        let outcomes = [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)].map { check.receive(sender: $0.0, sequence: $0.1) }
        #expect(outcomes == Array(repeating: .inOrder, count: 5))
        #expect(check.missing(sent: [3, 2]) == 0)
        #expect(check.missing(sent: [5, 2]) == 2)
    }

    @Test func skippedLinesThatTurnUpAreLateAndRepeatsAreDuplicates() {
        var check = SequenceCheck(senders: 1)
        let outcomes = [0, 3, 1, 1, 2, 3, 0, 4].map { check.receive(sender: 0, sequence: $0) }
        #expect(outcomes == [.inOrder, .skipped(2), .late, .duplicate, .late, .duplicate, .duplicate, .inOrder])
    }

    @Test func aLateLineInTheMiddleOfAGapKeepsTheRestOfTheGap() {
        var check = SequenceCheck(senders: 1)
        #expect(check.receive(sender: 0, sequence: 10) == .skipped(10))
        #expect(check.receive(sender: 0, sequence: 5) == .late)
        #expect(check.receive(sender: 0, sequence: 5) == .duplicate)
        #expect(check.receive(sender: 0, sequence: 4) == .late)
        #expect(check.receive(sender: 0, sequence: 6) == .late)
        #expect(check.receive(sender: 0, sequence: 0) == .late)
        #expect(check.receive(sender: 0, sequence: 9) == .late)
        #expect(check.receive(sender: 0, sequence: 10) == .duplicate)
    }
}
