import ChatCore
import ChatServer
import NIOConcurrencyHelpers

/// A test server's clock: the system's, plus whatever the test moved it on by. Moving it on
/// makes a code expire or a ban end at once, where a test would otherwise sleep; timers of
/// the event loops (flood control's spacing, the login deadline) still run in real time.
public final class MovableServerClock: Sendable {
    private let offset = NIOLockedValueBox(Duration.zero)

    public init() {}

    /// Moves the server's time on by `duration`.
    public func advance(by duration: Duration) {
        offset.withLockedValue { $0 += duration }
    }

    /// The clock to give the server.
    public var serverClock: ServerClock {
        ServerClock(
            now: { ContinuousClock.now + self.offset.withLockedValue { $0 } },
            wallTime: { ServerClock.system.wallTime() + self.offset.withLockedValue { $0 } })
    }
}
