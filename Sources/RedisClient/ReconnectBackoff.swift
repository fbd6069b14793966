/// How long to wait before the next connection attempt: exponential, capped, with full
/// jitter, so nodes that lost Redis together do not all come back in the same millisecond.
public struct ReconnectBackoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    private var attempt = 0

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before the next attempt: uniformly random between half and all of
    /// `initial × 2^attempts`, which is never more than `maximum`.
    public mutating func nextDelay<R: RandomNumberGenerator>(using random: inout R) -> Duration {
        let ceiling = min(maximum, initial * (1 << min(attempt, 20)))
        attempt += 1
        let milliseconds = max(
            1, ceiling.components.seconds * 1000 + ceiling.components.attoseconds / 1_000_000_000_000_000)
        return .milliseconds(Int64.random(in: (milliseconds / 2)...milliseconds, using: &random))
    }

    public mutating func nextDelay() -> Duration {
        var random = SystemRandomNumberGenerator()
        return nextDelay(using: &random)
    }

    /// A connection succeeded: the next failure starts from `initial` again.
    public mutating func reset() {
        attempt = 0
    }
}
