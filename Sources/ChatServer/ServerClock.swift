import ChatCore
import ChatHub

/// Where the server reads the time: every decision that depends on it takes its time from
/// here, so a test can move the server's time on (an OTP code expires, a ban ends) instead
/// of sleeping until it has.
public struct ServerClock: Sendable {
    /// Monotonic time, for deadlines and rates on this node (OTP codes, flood control).
    public var now: @Sendable () -> ContinuousClock.Instant
    /// Wall-clock time, as a node's own log stamps its commands (history window, ban
    /// expiry, throttles). A cluster's entries take Redis's time instead.
    public var wallTime: @Sendable () -> LogTime

    public init(
        now: @escaping @Sendable () -> ContinuousClock.Instant,
        wallTime: @escaping @Sendable () -> LogTime
    ) {
        self.now = now
        self.wallTime = wallTime
    }

    /// The system's clocks.
    public static let system = ServerClock(now: { ContinuousClock.now }, wallTime: LocalLog.wallClock)
}
