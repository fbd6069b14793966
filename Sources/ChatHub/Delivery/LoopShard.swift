import ChatCore
import NIOConcurrencyHelpers
import NIOCore

/// One event loop's share of the fan-out: the connections on that loop, grouped by room.
///
/// Producers (the hub log, under its lock; a handler for its own lines) append events to the
/// inbox; the first event of a batch schedules one drain task on the loop. The drain writes
/// each event's shared buffer to the local recipients (`promise: nil`, no copy) and then
/// flushes every connection it wrote to once, so a burst of lines costs one task and one
/// `writev` per connection, not one hop and one syscall per line per recipient.
package final class LoopShard: Sendable {
    package let index: Int
    let eventLoop: any EventLoop
    /// `MAX_SENDQ_BYTES`: past it a connection is closed as a slow consumer.
    let maxSendQueueBytes: Int

    /// How long a join or leave notice may wait for company. A burst of N logins into a
    /// big room costs N²/2 notices; gathered per member, they leave as one buffer and one
    /// write per member per burst instead of one write and one syscall each. Any other
    /// line for that member first writes what is gathered, so order is kept; 20 ms is far
    /// below what a person notices.
    static let presenceDelay = TimeAmount.milliseconds(20)

    /// The delay for a burst that already has `waiting` members with notices: each flush
    /// costs one write per such member, so in very big rooms (thousands of members logging
    /// in) the notices wait longer, up to ten times ``presenceDelay``.
    static func presenceDelay(waiting: Int) -> TimeAmount {
        presenceDelay * Int64(min(10, max(1, waiting / 500)))
    }

    private struct Inbox {
        var events: [ShardEvent] = []
        var drainScheduled = false
    }

    private let inbox = NIOLockedValueBox(Inbox())
    private let local: NIOLoopBoundBox<LocalState?>

    /// Where deliveries are counted.
    let metrics: (any DeliveryCounting)?

    init(index: Int, eventLoop: any EventLoop, maxSendQueueBytes: Int = .max, metrics: (any DeliveryCounting)? = nil) {
        self.index = index
        self.eventLoop = eventLoop
        self.maxSendQueueBytes = maxSendQueueBytes
        self.metrics = metrics
        self.local = .makeEmptyBox(valueType: LocalState.self, eventLoop: eventLoop)
    }

    // MARK: Any thread

    /// Queues an event.
    /// - Returns: `true` when the caller must call ``scheduleDrain()`` once it has released
    ///   its own locks (the inbox was idle).
    func enqueue(_ event: ShardEvent) -> Bool {
        inbox.withLockedValue { inbox in
            inbox.events.append(event)
            if inbox.drainScheduled { return false }
            inbox.drainScheduled = true
            return true
        }
    }

    func scheduleDrain() {
        eventLoop.execute { self.drain() }
    }

    /// Schedules `other`'s drain at the end of this loop's current tick, not now; on this
    /// shard's loop. A loop that reads several lines in one tick (a busy room) then wakes
    /// another loop once for all of them, and that loop writes them to each member in one
    /// `send` instead of waking for the first line and writing the rest in later drains.
    /// The wait is the rest of a tick this loop is already in.
    func scheduleDrainAfterThisTick(of other: LoopShard) {
        let state = self.state
        state.drainsAfterTick.append(other)
        guard state.drainsAfterTick.count == 1 else { return }
        // On its own loop, `execute` queues the task without waking anything.
        eventLoop.execute {
            let state = self.state
            for shard in state.drainsAfterTick { shard.scheduleDrain() }
            state.drainsAfterTick.removeAll(keepingCapacity: true)
        }
    }

    /// Queues an event and schedules the drain when needed; for callers holding no lock.
    package func post(_ event: ShardEvent) {
        if enqueue(event) { scheduleDrain() }
    }

    /// The lines queued for this loop and not yet written (for the metrics).
    package var queuedLines: Int {
        inbox.withLockedValue { $0.events.reduce(0) { $0 + $1.lineCount } }
    }

    // MARK: On the loop

    package func attach(_ session: LocalSession) {
        state.sessions[session.id] = session
    }

    package func detach(_ session: LocalSession) {
        let state = self.state
        state.sessions[session.id] = nil
        session.detached()
        state.removeFromRoom(session)
        session.receiver = nil
    }

    private var state: LocalState {
        if let state = local.value { return state }
        let state = LocalState(maxSendQueueBytes: maxSendQueueBytes)
        local.value = state
        return state
    }

    private func drain() {
        let state = self.state
        var batch = state.spareEvents
        inbox.withLockedValue { inbox in
            swap(&inbox.events, &batch)
            inbox.drainScheduled = false
        }
        var index = batch.startIndex
        while index < batch.endIndex {
            let end = LocalState.endOfRoomRun(in: batch, from: index)
            if end - index > 1 {
                state.handleRoomRun(batch[index..<end])
            } else {
                state.handle(batch[index])  // a lone room line comes back as a run of one
            }
            index = end
        }
        batch.removeAll(keepingCapacity: true)
        state.spareEvents = batch
        state.flushDirty()
        metrics?.delivered(roomLines: state.deliveries, privateMessages: state.privateMessages)
        state.deliveries = 0
        state.privateMessages = 0
        if state.needsLazyFlush {
            state.lazyFlushScheduled = true
            eventLoop.scheduleTask(in: Self.presenceDelay(waiting: state.lazy.count)) { self.state.flushLazy() }
        }
    }
}

/// The loop-confined part of a shard.
private final class LocalState {
    let maxSendQueueBytes: Int
    var sessions: [SessionID: LocalSession] = [:]
    var rooms: [RoomID: [LocalSession]] = [:]
    var dirty: [LocalSession] = []
    /// Sessions holding unflushed presence notices, and whether their flush is scheduled.
    var lazy: [LocalSession] = []
    var lazyFlushScheduled = false
    let allocator = ByteBufferAllocator()
    /// The drained batch's storage, kept to reuse its capacity.
    var spareEvents: [ShardEvent] = []
    /// Other loops' shards to wake when this loop's tick ends (``LoopShard/scheduleDrainAfterThisTick(of:)``).
    var drainsAfterTick: [LoopShard] = []
    /// Room lines and private messages written in this drain.
    var deliveries = 0
    var privateMessages = 0

    init(maxSendQueueBytes: Int) {
        self.maxSendQueueBytes = maxSendQueueBytes
    }

    func handle(_ event: ShardEvent) {
        switch event {
        case .room:
            handleRoomRun(CollectionOfOne(event))
        case .presence(let room, let line, let except):
            guard let members = rooms[room] else { return }
            for member in members where member.id != except {
                writeLazily(line, to: member)
            }
        case .direct(let id, let lines):
            guard let session = sessions[id], !lines.isEmpty else { return }
            // An answer of many lines (`/help` is 40) is one write, not one per line: each
            // write costs what a delivery costs, and a client that floods commands could
            // otherwise keep its loop busy long after the kernel stopped taking its bytes.
            write(lines.count == 1 ? lines[0] : joined(lines), to: session)
        case .privateMessage(let id, let line, let sender):
            guard let session = sessions[id], !session.ignoring.contains(key: sender) else { return }
            session.lastPrivateSender = sender
            write(line, to: session)
            privateMessages += 1
        case .everyoneOnline(let line):
            for session in sessions.values where session.room != nil {
                write(line, to: session)
            }
        case .renamed(let key, let name):
            for session in sessions.values {
                session.ignoring.rename(key: key, to: name)
                if session.lastPrivateSender == key { session.lastPrivateSender = name.lowercased() }
            }
        case .disconnect(let id, let lines):
            guard let session = sessions[id] else { return }
            for line in lines { write(line, to: session) }
            session.flush(sendQueueLimit: .max)
            session.context.close(promise: nil)
        case .answer(let id, let answer):
            sessions[id]?.receiver?.hubAnswered(answer)
        case .enterRoom(let id, let room, let lines, let history):
            guard let session = sessions[id] else { return }
            removeFromRoom(session)
            session.room = room
            session.roomSlot = rooms[room, default: []].count
            rooms[room, default: []].append(session)
            for line in lines { write(line, to: session) }
            replay(history, to: session)
        case .exitRoom(let id, let room):
            guard let session = sessions[id], session.room == room else { return }
            removeFromRoom(session)
        case .shutdown(let notice):
            for session in sessions.values {
                writePendingPresence(of: session)
                let context = session.context
                let flushed = context.eventLoop.makePromise(of: Void.self)
                session.writeThroughPipeline(notice, promise: flushed)
                context.flush()
                flushed.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            }
        case .closeAll:
            for session in sessions.values {
                session.context.close(promise: nil)
            }
        }
    }

    /// The history block: what the session does not ignore, between the header and the
    /// footer; nothing at all when no line is left. Written in chunks of up to
    /// ``replayChunkBytes``, not line by line: `HISTORY_SIZE=1000` long lines were a
    /// thousand writes for one join.
    private func replay(_ history: [HistoryLine], to session: LocalSession) {
        var total = Self.historyHeader.readableBytes + Self.historyFooter.readableBytes
        for entry in history { total += entry.line.readableBytes }
        var chunk: ByteBuffer?
        var wroteAny = false
        for entry in history where session.ignoring.isEmpty || !session.ignoring.contains(key: entry.sender) {
            if chunk == nil {
                chunk = allocator.buffer(capacity: min(total, Self.replayChunkBytes))
                if !wroteAny { chunk!.writeImmutableBuffer(Self.historyHeader) }
            }
            wroteAny = true
            chunk!.writeImmutableBuffer(entry.line)
            if chunk!.readableBytes >= Self.replayChunkBytes {
                write(chunk!, to: session, flushingWhenFull: true)
                chunk = nil
            }
        }
        guard wroteAny else { return }
        var last = chunk ?? allocator.buffer(capacity: Self.historyFooter.readableBytes)
        last.writeImmutableBuffer(Self.historyFooter)
        write(last, to: session, flushingWhenFull: true)
    }

    /// How much of a history replay goes in one write.
    static let replayChunkBytes = 64 * 1024

    /// Where the run of consecutive lines for the room of `batch[start]` ends (`start + 1`
    /// when that event is not a room line or the next is not for the same room).
    static func endOfRoomRun(in batch: [ShardEvent], from start: Int) -> Int {
        guard case .room(let room, _, _) = batch[start] else { return start + 1 }
        var end = start + 1
        while end < batch.endIndex, case .room(let next, _, _) = batch[end], next == room { end += 1 }
        return end
    }

    /// Consecutive lines for one room (one line, or a run from a busy room's drain), written
    /// to each member who ignores nobody as one buffer: the line itself, or the run joined
    /// once. A member then costs one write for the whole run instead of one per line; what
    /// NIO does per write (the pipeline, the pending-writes entry, retaining the buffer) was
    /// most of the CPU per delivery under load. Members who ignore someone get the lines one
    /// by one, filtered.
    func handleRoomRun(_ run: some Collection<ShardEvent>) {
        guard case .room(let room, let first, _) = run.first, let members = rooms[room] else { return }
        let count = run.count
        var whole = first
        if count == 1, members.count >= Self.membersForOwnCopy {
            // This loop's own copy: each member holds the buffer until its `send`, and a
            // reference count shared with the other loops' shards, changed by each of them
            // once per member at the same moment, moves its cache line between cores.
            whole = allocator.buffer(capacity: first.readableBytes)
            whole.writeImmutableBuffer(first)
        } else if count > 1 {
            var bytes = 0
            for case .room(_, let line, _) in run { bytes += line.readableBytes }
            whole = allocator.buffer(capacity: bytes)
            for case .room(_, let line, _) in run { whole.writeImmutableBuffer(line) }
        }
        // A local count, added once: a stored property of a class costs an access check
        // per change.
        var written = 0
        for member in members {
            // The ignore check costs nothing for the many who ignore nobody.
            if member.ignoring.isEmpty {
                write(whole, to: member)
                written += count
                continue
            }
            for case .room(_, let line, let sender) in run {
                if let sender, member.ignoring.contains(key: sender) { continue }
                write(line, to: member)
                written += 1
            }
        }
        deliveries += written
    }

    /// Lines copied into one buffer.
    private func joined(_ lines: [ByteBuffer]) -> ByteBuffer {
        var bytes = 0
        for line in lines { bytes += line.readableBytes }
        var whole = allocator.buffer(capacity: bytes)
        for line in lines { whole.writeImmutableBuffer(line) }
        return whole
    }

    /// From how many local members a lone line is copied for this loop (see handleRoomRun).
    static let membersForOwnCopy = 16

    private static let historyHeader = HubState.encode(ServerLine.historyHeader)
    private static let historyFooter = HubState.encode(ServerLine.historyFooter)

    func removeFromRoom(_ session: LocalSession) {
        guard let room = session.room else { return }
        session.room = nil
        let slot = session.roomSlot
        session.roomSlot = -1
        guard var members = rooms.removeValue(forKey: room) else { return }
        // Swap-remove: O(1), and order within one loop's member list does not matter.
        let last = members.removeLast()
        if slot < members.count {
            members[slot] = last
            last.roomSlot = slot
        }
        if !members.isEmpty { rooms[room] = members }
    }

    private func write(_ line: ByteBuffer, to session: LocalSession, flushingWhenFull: Bool = false) {
        if session.pendingPresence != nil { writePendingPresence(of: session) }
        // The first line of this drain for the session is held, to be sent at the flush;
        // a second goes through the pipeline after it, and NIO writes both in one `writev`.
        if !session.isDirty, session.maySendToSocket() {
            session.held = line
            session.isDirty = true
            dirty.append(session)
            return
        }
        session.writeThroughPipeline(line)
        session.closeIfSendQueueExceeds(maxSendQueueBytes, flushingFirst: flushingWhenFull)
        if !session.isDirty {
            session.isDirty = true
            dirty.append(session)
        }
    }

    /// Gathers a notice in the session's pending presence buffer (a copy of a few dozen
    /// bytes instead of a channel write).
    private func writeLazily(_ line: ByteBuffer, to session: LocalSession) {
        if session.pendingPresence == nil {
            session.pendingPresence = allocator.buffer(capacity: max(256, line.readableBytes))
            lazy.append(session)
        }
        session.pendingPresence!.writeImmutableBuffer(line)
    }

    /// Writes the gathered notices ahead of anything newer for the session.
    private func writePendingPresence(of session: LocalSession) {
        guard let pending = session.pendingPresence else { return }
        session.pendingPresence = nil
        session.writeThroughPipeline(pending)
    }

    func flushDirty() {
        for session in dirty {
            session.isDirty = false
            session.flush(sendQueueLimit: maxSendQueueBytes)
        }
        dirty.removeAll(keepingCapacity: true)
    }

    var needsLazyFlush: Bool { !lazy.isEmpty && !lazyFlushScheduled }

    /// Writes and flushes every session's gathered notices (those not written already).
    func flushLazy() {
        lazyFlushScheduled = false
        for session in lazy {
            guard let pending = session.pendingPresence else { continue }
            session.pendingPresence = nil
            session.send(pending, sendQueueLimit: maxSendQueueBytes)
        }
        lazy.removeAll(keepingCapacity: true)
    }
}
