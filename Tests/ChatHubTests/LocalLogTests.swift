import ChatCore
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

@testable import ChatHub

@Suite struct LocalLogTests {
    @Test func anEventLoopOfAnotherGroupHasNoShard() {
        let own = EmbeddedEventLoop()
        let log = LocalLog(
            eventLoops: [own], configuration: .init(historySize: 10, maxConnectionsPerIP: 1))
        #expect(log.shard(for: own)?.index == 0)
        #expect(log.shard(for: EmbeddedEventLoop()) == nil)
    }

    @Test func logTimeNeverGoesBackwards() {
        let clock = ManualClock(LogTime(milliseconds: 5_000))
        let log = LocalLog(
            eventLoops: [EmbeddedEventLoop()],
            configuration: .init(historySize: 10, maxConnectionsPerIP: 1),
            clock: { clock.time })
        log.submit(.sweep)
        #expect(log.now == LogTime(milliseconds: 5_000))
        clock.time = LogTime(milliseconds: 1_000)  // the wall clock was set back
        log.submit(.sweep)
        #expect(log.now == LogTime(milliseconds: 5_000))
    }
}

/// A clock a test sets by hand.
final class ManualClock: Sendable {
    private let value: NIOLockedValueBox<LogTime>
    init(_ time: LogTime) { value = NIOLockedValueBox(time) }
    var time: LogTime {
        get { value.withLockedValue { $0 } }
        set { value.withLockedValue { $0 = newValue } }
    }
}
