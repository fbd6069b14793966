import Testing

@testable import ChatCluster
@testable import ChatHub

/// The ledger that keeps a node from both delivering and refusing a command.
@Suite struct AppendLedgerTests {
    @Test func whatCameBackIsDeliveredWhatDidNotIsRefusedOnceTheReaderCaughtUp() {
        var ledger = AppendLedger()
        let first = ledger.record(.say(1, text: "one", isAction: false))
        let second = ledger.record(.say(1, text: "two", isAction: false))
        let third = ledger.record(.release(1))
        // The connection dies. Redis had taken the first; the reader saw it come back.
        ledger.confirm(first)
        ledger.reconnected(tail: StreamID(milliseconds: 100, sequence: 0))
        // Sent on the new connection: not in doubt.
        let fourth = ledger.record(.say(1, text: "four", isAction: false))
        // Until the reader has applied up to the tail, nothing is settled.
        #expect(ledger.settle(applied: StreamID(milliseconds: 99, sequence: 5)).isEmpty)
        #expect(
            ledger.settle(applied: StreamID(milliseconds: 100, sequence: 0)) == [
                .say(1, text: "two", isAction: false), .release(1),
            ])
        // Settled once.
        #expect(ledger.settle(applied: StreamID(milliseconds: 200, sequence: 0)).isEmpty)
        #expect(ledger.unconfirmedCount == 1)
        ledger.confirm(fourth)
        #expect(ledger.unconfirmedCount == 0)
        _ = (second, third)
    }

    @Test func aLostLogTakesEveryAppendNotReadBackWithIt() {
        var ledger = AppendLedger()
        let first = ledger.record(.say(1, text: "one", isAction: false))
        _ = ledger.record(.say(1, text: "two", isAction: false))
        _ = ledger.record(.release(1))
        ledger.confirm(first)
        ledger.reconnected(tail: StreamID(milliseconds: 100, sequence: 0))
        #expect(ledger.abandonAll() == [.say(1, text: "two", isAction: false), .release(1)])
        #expect(ledger.unconfirmedCount == 0)
        // The settlement went with them.
        #expect(ledger.settle(applied: StreamID(milliseconds: 100, sequence: 0)).isEmpty)
    }

    @Test func anErrorReplyTakesTheAppendOffTheLedger() {
        var ledger = AppendLedger()
        let sequence = ledger.record(.sweep)
        #expect(ledger.reject(sequence) == .sweep)
        #expect(ledger.reject(sequence) == nil)
        ledger.reconnected(tail: .zero)
        #expect(ledger.settle(applied: .zero).isEmpty)
    }

    @Test func tagsNameTheNodeAndTheSequence() {
        let tag = Array(AppendLedger.entryTag(node: 7, sequence: 42).utf8)
        #expect(AppendLedger.sequence(inTag: tag, ofNode: 7) == 42)
        #expect(AppendLedger.sequence(inTag: tag, ofNode: 70) == nil)
        #expect(AppendLedger.sequence(inTag: Array("garbage".utf8), ofNode: 7) == nil)
    }
}
