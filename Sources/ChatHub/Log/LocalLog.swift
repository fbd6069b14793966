import ChatCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The hub log of a single node: applies each command at once, on the caller's thread,
/// to the node's ``HubReplica`` (one lock; the writes happen later on the shards' loops).
package final class LocalLog: NodeLog {
    package let replica: HubReplica
    private let clock: @Sendable () -> LogTime

    /// - Parameters:
    ///   - eventLoops: one shard each, in order; a session's `shard` is an index into them.
    ///   - configuration: the state's limits (its `shardCount` is the number of loops).
    ///   - metrics: where the shards count deliveries.
    ///   - clock: the time commands are stamped with; wall-clock milliseconds by default.
    package init(
        eventLoops: [any EventLoop], configuration: HubState.Configuration, maxSendQueueBytes: Int = .max,
        metrics: (any DeliveryCounting)? = nil, clock: @escaping @Sendable () -> LogTime = LocalLog.wallClock
    ) {
        self.replica = .ofNodeOnItsOwn(
            eventLoops: eventLoops, configuration: configuration, maxSendQueueBytes: maxSendQueueBytes,
            metrics: metrics)
        self.clock = clock
    }

    // MARK: HubLog

    package func submit(_ command: HubCommand) {
        // Log time never goes backwards, whatever the wall clock does.
        replica.apply(command) { [clock] last in max(clock(), last) }
    }

    package var now: LogTime {
        max(clock(), replica.lastTime)
    }

    // MARK: Shutdown

    package func beginShutdown(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let (allClosed, began) = replica.awaitAllClosed(on: eventLoop) { $0.isShuttingDown }
        if began { submit(.shutdown) }
        return allClosed
    }

    /// Milliseconds of wall-clock time, as a log stamps its entries.
    @Sendable package static func wallClock() -> LogTime {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return LogTime(milliseconds: Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000)
    }
}
