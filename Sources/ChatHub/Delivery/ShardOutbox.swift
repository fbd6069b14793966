import NIOCore

/// Turns effects into events on the shards of the sessions they concern, while the log's
/// lock is held, and remembers which shards need a drain scheduled so the wake-ups (which
/// may be syscalls) happen after the lock is released.
///
/// Only this node's sessions are its business: effects addressed to sessions of other
/// nodes are dropped, and room lines go only to this node's shards.
package struct ShardOutbox {
    let shards: [LoopShard]
    /// This node's number, which its sessions' ids carry.
    let node: NodeNumber
    /// This node's shards (other nodes may have more loops).
    private let shardMask: ShardSet
    private var wake: UInt64 = 0

    init(shards: [LoopShard], node: NodeNumber = 0) {
        self.shards = shards
        self.node = node
        self.shardMask = shards.count >= 64 ? .max : (1 << ShardSet(shards.count)) - 1
    }

    /// Queues the effect's events.
    /// - Returns: whether the effect says the last connection is gone (shutdown).
    mutating func post(_ effect: HubEffect) -> Bool {
        switch effect {
        case .room(let room, let line, let sender, let set):
            for index in ShardIndices(pending: set & shardMask) {
                post(.room(room, line, from: sender), toShard: index)
            }
        case .presence(let room, let line, let subject, let set):
            for index in ShardIndices(pending: set & shardMask) {
                post(.presence(room, line, except: subject), toShard: index)
            }
        case .lines(let session, let lines):
            guard isLocal(session) else { return false }
            post(.direct(session.id, lines), toShard: session.shard)
        case .privateMessage(let session, let line, let sender):
            guard isLocal(session) else { return false }
            post(.privateMessage(session.id, line, from: sender), toShard: session.shard)
        case .everyone(let line):
            for index in shards.indices { post(.everyoneOnline(line), toShard: index) }
        case .renamed(let key, let name):
            for index in shards.indices { post(.renamed(fromKey: key, to: name), toShard: index) }
        case .disconnect(let session, let lines):
            guard isLocal(session) else { return false }
            post(.disconnect(session.id, lines), toShard: session.shard)
        case .close(let id):
            guard SessionIDSpace.node(of: id) == node else { return false }
            for index in shards.indices { post(.disconnect(id, []), toShard: index) }
        case .enterRoom(let session, let room, let lines, let history):
            guard isLocal(session) else { return false }
            post(.enterRoom(session.id, room, lines, history: history), toShard: session.shard)
        case .exitRoom(let session, let room):
            guard isLocal(session) else { return false }
            post(.exitRoom(session.id, room), toShard: session.shard)
        case .answer(let session, let answer):
            guard isLocal(session) else { return false }
            post(.answer(session.id, answer), toShard: session.shard)
        case .shutdown(let notice):
            for index in shards.indices { post(.shutdown(notice), toShard: index) }
        case .allConnectionsClosed:
            return true
        }
        return false
    }

    private func isLocal(_ session: SessionAddress) -> Bool {
        SessionIDSpace.node(of: session.id) == node
    }

    private mutating func post(_ event: ShardEvent, toShard index: Int) {
        if shards[index].enqueue(event) { wake |= 1 << UInt64(index) }
    }

    /// Schedules the drains the posts asked for. On one of the shards' loops, the other
    /// loops' drains wait for the end of this loop's tick (``LoopShard/scheduleDrainAfterThisTick(of:)``),
    /// and this loop's own drain is queued first, so the others are woken once it is done.
    ///
    /// The loops then write a line to their members one after the other, not at the same
    /// moment. In a room of 500 at 100 lines a second, two loops writing at once cost 14 %
    /// more CPU per delivery than one loop (two threads cost even the ideal C server 5 to
    /// 11 %): the kernel's loopback receive path and the receivers' wake-ups compete with
    /// both writers for the cores. Taking turns took about 6 % off (BENCHMARKS.md, "Loops
    /// that write one after the other"); the other loop's members wait this loop's drain,
    /// which with TLS (encrypting for each member) is about half a millisecond.
    func wakeShards() {
        guard wake != 0 else { return }
        let here = shards.firstIndex { $0.eventLoop.inEventLoop }
        if let here, wake & (1 << UInt64(here)) != 0 { shards[here].scheduleDrain() }
        for index in ShardIndices(pending: wake) where index != here {
            if let here {
                shards[here].scheduleDrainAfterThisTick(of: shards[index])
            } else {
                shards[index].scheduleDrain()
            }
        }
    }
}

/// The shard indices in a ``ShardSet``, lowest first; a value, so iterating allocates nothing.
package struct ShardIndices: Sequence, IteratorProtocol {
    var pending: ShardSet

    package mutating func next() -> Int? {
        guard pending != 0 else { return nil }
        let index = pending.trailingZeroBitCount
        pending &= pending - 1
        return index
    }
}
