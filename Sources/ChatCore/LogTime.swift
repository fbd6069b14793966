/// A moment as a log stamps it: whole milliseconds of wall-clock time since 1970.
///
/// Every decision of the shared chat state that depends on time (history window, ban
/// expiry, throttles) takes this as an input instead of reading a clock, so the same
/// commands at the same log times give the same outcome on every replica (a Redis stream
/// entry's id carries exactly these milliseconds).
public struct LogTime: InstantProtocol, Codable, Hashable, Sendable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    public func advanced(by duration: Duration) -> LogTime {
        LogTime(milliseconds: milliseconds + duration.wholeMilliseconds)
    }

    public func duration(to other: LogTime) -> Duration {
        .milliseconds(other.milliseconds - milliseconds)
    }

    public static func < (lhs: LogTime, rhs: LogTime) -> Bool {
        lhs.milliseconds < rhs.milliseconds
    }

    public static func + (lhs: LogTime, rhs: Duration) -> LogTime { lhs.advanced(by: rhs) }
    public static func - (lhs: LogTime, rhs: Duration) -> LogTime { lhs.advanced(by: .zero - rhs) }
    public static func - (lhs: LogTime, rhs: LogTime) -> Duration { rhs.duration(to: lhs) }

    public var description: String { "\(milliseconds) ms" }
}

extension Duration {
    /// The duration in whole milliseconds, rounded towards zero.
    public var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
