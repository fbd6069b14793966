/// A token bucket: up to `burst` events at once, refilled at `rate` per second.
///
/// Used for chat flood control: an honest burst (a short paste) passes at once, a sustained
/// flood is slowed to `rate`. Time is passed in, so tests control it.
public struct TokenBucket: Sendable {
    public let burst: Double
    public let rate: Double
    private var tokens: Double
    private var updated: ContinuousClock.Instant

    public init(burst: Int, perSecond rate: Double, now: ContinuousClock.Instant) {
        precondition(burst >= 1 && rate > 0)
        self.burst = Double(burst)
        self.rate = rate
        self.tokens = Double(burst)
        self.updated = now
    }

    /// Takes one token if there is one.
    /// - Returns: `nil` when the event may happen now, else how long until a token is due.
    public mutating func take(now: ContinuousClock.Instant) -> Duration? {
        refill(now: now)
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        return .seconds((1 - tokens) / rate)
    }

    private mutating func refill(now: ContinuousClock.Instant) {
        guard now > updated else { return }
        let elapsed = now - updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(burst, tokens + seconds * rate)
        updated = now
    }
}
