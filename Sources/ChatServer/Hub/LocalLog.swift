import ChatCore
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The hub log of a single node: applies each command at once, under one lock, and hands
/// its effects to the per-loop shards before the lock is released.
///
/// Queuing effects under the lock is what gives each room one total order: every shard
/// sees a room's lines in the order the commands were applied. The writes happen later,
/// on the shards' loops, never under the lock.
final class LocalLog: HubLog {
    let shards: [LoopShard]

    private struct Locked {
        var state: HubState
        /// The effects of the command being applied; its storage is kept between commands.
        var effects: [HubEffect] = []
        var lastTime = LogTime(milliseconds: 0)
        var allClosed: EventLoopPromise<Void>?
    }

    private let locked: NIOLockedValueBox<Locked>
    private let clock: @Sendable () -> LogTime
    private let nextSessionID = NIOLockedValueBox<SessionID>(1)

    /// - Parameters:
    ///   - eventLoops: one shard each, in order; a session's `shard` is an index into them.
    ///   - configuration: the state's limits (its `shardCount` is the number of loops).
    ///   - metrics: where the shards count deliveries.
    ///   - clock: the time commands are stamped with; wall-clock milliseconds by default.
    init(
        eventLoops: [any EventLoop], configuration: HubState.Configuration, maxSendQueueBytes: Int = .max,
        metrics: ChatMetrics? = nil, clock: @escaping @Sendable () -> LogTime = LocalLog.wallClock
    ) {
        precondition(!eventLoops.isEmpty && eventLoops.count <= 64, "1 to 64 event loops")
        self.shards = eventLoops.enumerated().map {
            LoopShard(index: $0.offset, eventLoop: $0.element, maxSendQueueBytes: maxSendQueueBytes, metrics: metrics)
        }
        var configuration = configuration
        configuration.shardCount = eventLoops.count
        self.locked = NIOLockedValueBox(Locked(state: HubState(configuration: configuration)))
        self.clock = clock
    }

    /// The shard of `eventLoop`, or `nil` when the log has none for it (a connection on a
    /// loop of another group: a wiring mistake). Never another loop's shard: its state is
    /// confined to its own loop, and touching it from this one would be a data race.
    func shard(for eventLoop: any EventLoop) -> LoopShard? {
        shards.first { $0.eventLoop === eventLoop }
    }

    func makeSessionID() -> SessionID {
        nextSessionID.withLockedValue { id in
            defer { id += 1 }
            return id
        }
    }

    // MARK: HubLog

    func submit(_ command: HubCommand) {
        var outbox = ShardOutbox(shards: shards)
        let allClosed = locked.withLockedValue { locked -> EventLoopPromise<Void>? in
            // Log time never goes backwards, whatever the wall clock does.
            let now = max(clock(), locked.lastTime)
            locked.lastTime = now
            locked.state.apply(command, at: now, into: &locked.effects)
            var finished = false
            for effect in locked.effects { finished = outbox.post(effect) || finished }
            locked.effects.removeAll(keepingCapacity: true)
            guard finished else { return nil }
            defer { locked.allClosed = nil }
            return locked.allClosed
        }
        outbox.wakeShards()
        allClosed?.succeed()
    }

    func read<T>(_ body: (HubState) -> T) -> T {
        locked.withLockedValue { body($0.state) }
    }

    var now: LogTime {
        locked.withLockedValue { max(clock(), $0.lastTime) }
    }

    // MARK: Shutdown

    /// Refuses new connections and tells everyone (their last line); each connection closes
    /// once the notice is flushed.
    /// - Returns: a future that succeeds when the last connection has been released.
    func beginShutdown(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let existing = locked.withLockedValue { locked -> EventLoopFuture<Void>? in
            if let existing = locked.allClosed { return existing.futureResult }
            if locked.state.isShuttingDown { return eventLoop.makeSucceededVoidFuture() }
            locked.allClosed = promise
            return nil
        }
        if let existing {
            promise.succeed()
            return existing
        }
        submit(.shutdown)
        return promise.futureResult
    }

    /// Closes whatever is still open (the shutdown grace period is over).
    func closeAll() {
        for shard in shards { shard.post(.closeAll) }
    }

    /// Milliseconds of wall-clock time, as a log stamps its entries.
    @Sendable static func wallClock() -> LogTime {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return LogTime(milliseconds: Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000)
    }
}
