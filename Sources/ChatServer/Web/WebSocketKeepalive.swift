/// When a WebSocket client is pinged, and when it is given up: silence for one interval
/// earns a ping, and a ping unanswered (nothing heard at all) for another interval closes
/// the connection. Anything the client sends counts as an answer: a browser that is
/// chatting need not be pinged. Pure; the handler gives it the time.
struct WebSocketKeepalive {
    enum Step: Equatable {
        /// Nothing to do before this instant; look again then.
        case wait(until: ContinuousClock.Instant)
        /// Send a ping now, then look again at the instant.
        case ping(thenWaitUntil: ContinuousClock.Instant)
        /// The client did not answer: close the connection.
        case giveUp
    }

    let interval: Duration
    private var lastHeard: ContinuousClock.Instant
    private var pingSent: ContinuousClock.Instant?

    init(interval: Duration, now: ContinuousClock.Instant) {
        self.interval = interval
        self.lastHeard = now
    }

    /// The client sent a frame (any frame: a line, a pong, a ping).
    mutating func heard(at now: ContinuousClock.Instant) {
        lastHeard = now
        pingSent = nil
    }

    /// What to do at `now` (when the last ``Step/wait(until:)`` is due, or earlier).
    mutating func check(at now: ContinuousClock.Instant) -> Step {
        if let pingSent {
            let deadline = pingSent + interval
            return now >= deadline ? .giveUp : .wait(until: deadline)
        }
        let quietUntil = lastHeard + interval
        guard now >= quietUntil else { return .wait(until: quietUntil) }
        pingSent = now
        return .ping(thenWaitUntil: now + interval)
    }
}
