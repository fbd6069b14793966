import ChatCore
import NIOConcurrencyHelpers
import NIOCore

/// This node's copy of the hub state and the shards that carry out its effects.
///
/// Every command a log orders is applied here, under one lock, and the effects for this
/// node's sessions are queued on their shards before the lock is released: that is what
/// gives each room one total order on every shard. Effects for sessions of other nodes
/// (a cluster) are dropped; their own nodes carry them out from their own replicas.
package final class HubReplica: Sendable {
    let shards: [LoopShard]

    private struct Locked {
        /// The node's number: its sessions' ids carry it (0 for a node on its own).
        var node: NodeNumber
        var state: HubState
        /// The effects of the command being applied; its storage is kept between commands.
        var effects: [HubEffect] = []
        var lastTime = LogTime(milliseconds: 0)
        /// Admitted connections of this node still holding their slot.
        var localConnections = 0
        /// Set when this node alone shuts down (a cluster node): its new connections are
        /// refused while the others' go on.
        var isLeaving = false
        var allClosed: EventLoopPromise<Void>?
    }

    private let locked: NIOLockedValueBox<Locked>
    private let nextSessionID: NIOLockedValueBox<SessionID>

    /// - Parameters:
    ///   - eventLoops: one shard each, in order; a session's `shard` is an index into them.
    ///   - configuration: the state's limits; its `shardCount` must cover every node's
    ///     loops (a node on its own: its number of loops).
    ///   - node: the node's number in a cluster.
    package init(
        eventLoops: [any EventLoop], configuration: HubState.Configuration, node: NodeNumber = 0,
        maxSendQueueBytes: Int = .max, metrics: (any DeliveryCounting)? = nil
    ) {
        precondition(!eventLoops.isEmpty && eventLoops.count <= configuration.shardCount, "too many event loops")
        self.shards = eventLoops.enumerated().map {
            LoopShard(index: $0.offset, eventLoop: $0.element, maxSendQueueBytes: maxSendQueueBytes, metrics: metrics)
        }
        self.locked = NIOLockedValueBox(Locked(node: node, state: HubState(configuration: configuration)))
        self.nextSessionID = NIOLockedValueBox(SessionIDSpace.firstID(of: node))
    }

    /// The replica of a node on its own: as many shards as loops, the state sized for them.
    package static func ofNodeOnItsOwn(
        eventLoops: [any EventLoop], configuration: HubState.Configuration, maxSendQueueBytes: Int,
        metrics: (any DeliveryCounting)?
    ) -> HubReplica {
        precondition(!eventLoops.isEmpty && eventLoops.count <= 64, "1 to 64 event loops")
        var configuration = configuration
        configuration.shardCount = eventLoops.count
        return HubReplica(
            eventLoops: eventLoops, configuration: configuration, maxSendQueueBytes: maxSendQueueBytes,
            metrics: metrics)
    }

    /// Replaces the state by a snapshot's (a cluster node starting, or one that fell behind
    /// the trimmed log). This node's connections are counted from it.
    package func load(_ state: HubState, lastTime: LogTime) {
        locked.withLockedValue { locked in
            locked.state = state
            locked.lastTime = lastTime
            locked.localConnections = state.connectionsPerNode[locked.node] ?? 0
        }
    }

    /// Redis lost the log (a cluster node): the state starts again empty, to be rebuilt
    /// from the fresh log, and this node's connections are returned for it to announce
    /// there. Until its announcement comes back, its users are in no room (the new state
    /// numbers rooms afresh, and a line for a new room must not reach a member of an old
    /// one); their connections stay open and keep counting as this node's.
    package func startFreshLog() -> [Reannouncement] {
        let (announced, exits) = locked.withLockedValue { locked in
            let announced = locked.state.reannouncements(of: locked.node)
            let exits = announced.compactMap { connection -> HubEffect? in
                guard let member = connection.member, let room = locked.state.rooms[member.roomKey] else { return nil }
                return .exitRoom(member.address, room.id)
            }
            locked.state = HubState(configuration: locked.state.configuration)
            return (announced, exits)
        }
        deliver(exits)
        return announced
    }

    /// The shard of `eventLoop`, or `nil` when there is none for it (a connection on a
    /// loop of another group: a wiring mistake). Never another loop's shard: its state is
    /// confined to its own loop, and touching it from this one would be a data race.
    func shard(for eventLoop: any EventLoop) -> LoopShard? {
        shards.first { $0.eventLoop === eventLoop }
    }

    /// The loop of the shard this thread runs, if it runs one.
    package var currentEventLoop: (any EventLoop)? {
        shards.first { $0.eventLoop.inEventLoop }?.eventLoop
    }

    /// The node's number: its sessions' ids carry it (0 for a node on its own).
    package var node: NodeNumber { locked.withLockedValue { $0.node } }

    /// Takes the number a cluster gave this node; before its first session.
    package func join(asNode node: NodeNumber) {
        locked.withLockedValue { $0.node = node }
        nextSessionID.withLockedValue { $0 = SessionIDSpace.firstID(of: node) }
    }

    func makeSessionID() -> SessionID {
        nextSessionID.withLockedValue { id in
            defer { id += 1 }
            return id
        }
    }

    /// Applies one command at the time `stamp` gives it, which may depend on the time of
    /// the command before (a local log never lets time go backwards), or not at all when
    /// `stamp` returns `nil`. `stamp` runs under the lock every command is applied under: a
    /// log that records the command there (the journal with `DATA_FSYNC=interval`) records
    /// commands in the order they are applied.
    /// - Returns: whether the command was applied.
    @discardableResult
    package func apply(_ command: HubCommand, stamp: (_ last: LogTime) -> LogTime?) -> Bool {
        let (outbox, allClosed) = locked.withLockedValue { locked -> (ShardOutbox?, EventLoopPromise<Void>?) in
            guard let now = stamp(locked.lastTime) else { return (nil, nil) }
            var outbox = ShardOutbox(shards: shards, node: locked.node)
            let allClosed = Self.apply(command, at: now, to: &locked, outbox: &outbox)
            return (outbox, allClosed)
        }
        guard let outbox else { return false }
        outbox.wakeShards()
        allClosed?.succeed()
        return true
    }

    /// Runs `body` on the state and the time of its last command with no command applied
    /// meanwhile: where a log that records commands as they are applied cuts itself for a
    /// snapshot.
    package func withStateHeld<T>(_ body: (HubState, LogTime) throws -> T) rethrows -> T {
        try locked.withLockedValue { try body($0.state, $0.lastTime) }
    }

    /// Applies commands in order, each at its own time (a batch read from a shared log, or
    /// written to the journal). An array, not any sequence: called from other modules, a
    /// generic would run unspecialised, through witness tables, on the cluster's hot path.
    package func apply(_ entries: [(command: HubCommand, time: LogTime)]) {
        let (outbox, allClosed) = locked.withLockedValue { locked in
            var outbox = ShardOutbox(shards: shards, node: locked.node)
            var allClosed: EventLoopPromise<Void>?
            for entry in entries {
                allClosed = Self.apply(entry.command, at: entry.time, to: &locked, outbox: &outbox) ?? allClosed
            }
            return (outbox, allClosed)
        }
        outbox.wakeShards()
        allClosed?.succeed()
    }

    /// - Returns: the promise to fulfil once the lock is released, when the command
    ///   closed the last connection of a shutdown.
    private static func apply(
        _ command: HubCommand, at now: LogTime, to locked: inout Locked, outbox: inout ShardOutbox
    ) -> EventLoopPromise<Void>? {
        let node = locked.node
        let time = max(now, locked.lastTime)
        locked.lastTime = time
        // Whether this node's connection held a slot before, so the count follows the state.
        var releasedLocal = false
        if case .release(let id) = command, SessionIDSpace.node(of: id) == node {
            releasedLocal = locked.state.connections[id] != nil
        }
        locked.state.apply(command, at: time, into: &locked.effects)
        if case .admit(let address, _, _) = command, SessionIDSpace.node(of: address.id) == node,
            locked.state.connections[address.id] != nil
        {
            locked.localConnections += 1
            if locked.isLeaving { refuseAdmissions(&locked.effects) }
        }
        if releasedLocal { locked.localConnections -= 1 }
        if case .nodeDown(let gone) = command, gone == node {
            // The others declared this node gone: the state released its connections at
            // once, not one `release` at a time, so the count starts again from the state.
            locked.localConnections = locked.state.connectionsPerNode[node] ?? 0
        }
        var finished = false
        for effect in locked.effects { finished = outbox.post(effect) || finished }
        locked.effects.removeAll(keepingCapacity: true)
        if locked.isLeaving && locked.localConnections == 0 { finished = true }
        guard finished else { return nil }
        defer { locked.allClosed = nil }
        return locked.allClosed
    }

    /// Carries out effects that come from this node rather than the state (a cluster node
    /// telling a user their command could not reach the log).
    package func deliver(_ effects: [HubEffect]) {
        var outbox = ShardOutbox(shards: shards, node: node)
        for effect in effects { _ = outbox.post(effect) }
        outbox.wakeShards()
    }

    /// A node that is leaving turns its admissions into refusals: the state holds the slot
    /// as every replica does, and the connection gives it back as it closes.
    private static func refuseAdmissions(_ effects: inout [HubEffect]) {
        for index in effects.indices {
            if case .answer(let address, .admission(.admitted)) = effects[index] {
                effects[index] = .answer(
                    address, .admission(.refused(line: ServerLine.shuttingDown, reason: .shuttingDown)))
            }
        }
    }

    package func read<T>(_ body: (HubState) -> T) -> T {
        locked.withLockedValue { body($0.state) }
    }

    /// The time of the last command applied.
    package var lastTime: LogTime {
        locked.withLockedValue { $0.lastTime }
    }

    // MARK: Shutdown

    /// Registers the promise that succeeds when the last connection is released.
    /// - Returns: the future to wait on (an earlier shutdown's, when one began), and
    ///   whether this call began the shutdown.
    package func awaitAllClosed(
        on eventLoop: any EventLoop, alreadyDone: (HubState) -> Bool
    ) -> (
        EventLoopFuture<Void>, began: Bool
    ) {
        let promise = eventLoop.makePromise(of: Void.self)
        let existing = locked.withLockedValue { locked -> EventLoopFuture<Void>? in
            if let existing = locked.allClosed { return existing.futureResult }
            if alreadyDone(locked.state) || locked.isLeaving { return eventLoop.makeSucceededVoidFuture() }
            locked.allClosed = promise
            return nil
        }
        if let existing {
            promise.succeed()
            return (existing, false)
        }
        return (promise.futureResult, true)
    }

    /// This node alone shuts down (a cluster node): new connections are refused, every
    /// local user is told and closed, and the shutdown completes when the last local
    /// connection's release has been applied.
    package func beginLeaving(notice: ByteBuffer) {
        let done = locked.withLockedValue { locked -> EventLoopPromise<Void>? in
            locked.isLeaving = true
            guard locked.localConnections == 0 else { return nil }
            defer { locked.allClosed = nil }
            return locked.allClosed
        }
        for shard in shards { shard.post(.shutdown(notice)) }
        done?.succeed()
    }

    /// Ends the wait for the last connection's release without it (a cluster node that
    /// could not read its releases back before giving up): no promise is left pending.
    package func stopWaitingForAllClosed() {
        let pending = locked.withLockedValue { locked -> EventLoopPromise<Void>? in
            defer { locked.allClosed = nil }
            return locked.allClosed
        }
        pending?.succeed()
    }

    /// Closes whatever is still open (the shutdown grace period is over).
    package func closeAll() {
        for shard in shards { shard.post(.closeAll) }
    }
}
