import Testing

@testable import ChatServer

struct WebSocketKeepaliveTests {
    @Test func silenceEarnsAPingAndAnUnansweredPingTheEnd() {
        let start = ContinuousClock.now
        var keepalive = WebSocketKeepalive(interval: .seconds(30), now: start)
        #expect(keepalive.check(at: start + .seconds(10)) == .wait(until: start + .seconds(30)))
        #expect(keepalive.check(at: start + .seconds(30)) == .ping(thenWaitUntil: start + .seconds(60)))
        #expect(keepalive.check(at: start + .seconds(45)) == .wait(until: start + .seconds(60)))
        #expect(keepalive.check(at: start + .seconds(60)) == .giveUp)
    }

    @Test func anythingTheClientSendsIsAnAnswer() {
        let start = ContinuousClock.now
        var keepalive = WebSocketKeepalive(interval: .seconds(30), now: start)
        // Chatting: never pinged.
        keepalive.heard(at: start + .seconds(20))
        #expect(keepalive.check(at: start + .seconds(30)) == .wait(until: start + .seconds(50)))
        // Pinged, then a line (not a pong) arrives: alive again.
        #expect(keepalive.check(at: start + .seconds(50)) == .ping(thenWaitUntil: start + .seconds(80)))
        keepalive.heard(at: start + .seconds(55))
        #expect(keepalive.check(at: start + .seconds(80)) == .wait(until: start + .seconds(85)))
    }
}
