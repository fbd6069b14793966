import Glibc
import NIOCore

/// A connection as its event loop's shard sees it: where to write, and its place in the
/// shard's room membership. Lives on one event loop and is touched only there.
///
/// Every write to the connection goes through its session (the shard's, and its
/// connection handler's before login), which is what lets the shard write a plain TCP
/// connection's lines straight to its socket (``socket``) without overtaking what NIO
/// still holds.
package final class LocalSession {
    // The stored properties are in this order so that the small ones fill the gaps the
    // large ones leave: the object is allocated per connection (152 bytes).
    package let id: SessionID
    let context: ChannelHandlerContext
    /// The connection's socket, when lines may be written straight to it: plain TCP, where
    /// nothing in the pipeline changes outbound bytes. -1: always through the pipeline.
    ///
    /// Writing to it is safe while the session is attached to its shard (``isAttached``):
    /// NIO closes the descriptor in the same event-loop call that fires `channelInactive`,
    /// where the connection handler detaches the session, with none of our code between,
    /// so the shard never writes to a number closed and reused by another connection.
    let socket: CInt
    /// Cleared when the shard lets the session go (its connection closed).
    var isAttached = true
    /// Whether NIO may hold bytes for the connection not yet on the socket; writing
    /// straight to the socket then could overtake them. Set by every pipeline write;
    /// cleared once NIO reports its queue empty.
    private var pipelineMayHoldBytes = true
    /// Written to since the last flush.
    var isDirty = false
    /// Set when the server closed the connection because the client does not read.
    package var disconnectedAsSlowConsumer = false
    /// What this drain has for the connection, not yet sent: held while it is the only
    /// buffer, so that the usual case (one buffer per member per drain) costs one `send`
    /// and nothing of NIO's per-write path (pipeline, pending-writes queue, flush), which
    /// was about a third of the CPU per delivery at chat rates.
    var held: ByteBuffer?
    /// The room the shard has this session in, and its index in that room's member list.
    var room: RoomID?
    var roomSlot = -1
    /// Join and leave notices not yet written: they wait (see
    /// ``LoopShard/presenceDelay(waiting:)``) to leave in one write with the others of a burst.
    var pendingPresence: ByteBuffer?
    /// The users whose room lines, actions and private messages this user does not want.
    package var ignoring = IgnoreList()
    /// Who handles the hub's answers to this session's requests (its connection); cleared
    /// when the shard lets the session go, which ends the reference cycle.
    package var receiver: (any HubAnswerReceiver)?
    /// Lower-cased name of the last user who sent this one a private message (for /reply).
    package var lastPrivateSender: String?

    /// Closes the connection when more than `limit` bytes wait to be sent to it.
    ///
    /// Cheap for healthy clients: only a channel that is already not writable (over the
    /// high watermark, where its reads are paused) is asked for its exact backlog.
    /// - Parameter flushingFirst: for a block written in one go that may alone be larger
    ///   than the limit (a join's history, which `HISTORY_SIZE` lets be megabytes): what is
    ///   written is offered to the kernel before the backlog is counted, so that only what a
    ///   client left unread counts. Not for everything: a flush can leave a stalled
    ///   client's backlog below the limit with its channel still not writable, its reads
    ///   paused and nothing more to send it, and it would never be judged.
    /// - Returns: whether the connection was closed.
    @discardableResult
    package func closeIfSendQueueExceeds(_ limit: Int, flushingFirst: Bool = false) -> Bool {
        let channel = context.channel
        guard !channel.isWritable, !disconnectedAsSlowConsumer else { return false }
        if flushingFirst { context.flush() }
        guard !channel.isWritable, let queued = try? channel.syncOptions?.getOption(.bufferedWritableBytes),
            queued > limit
        else { return false }
        disconnectedAsSlowConsumer = true
        context.close(promise: nil)
        return true
    }

    package init(id: SessionID, context: ChannelHandlerContext, socket: CInt = -1) {
        self.id = id
        self.context = context
        self.socket = socket
    }

    /// The connection closed: nothing may be written to its socket any more.
    func detached() {
        isAttached = false
        held = nil
    }

    // MARK: Writing

    /// Whether a line may go straight to the socket now: the session has one, and nothing
    /// written through the pipeline is still queued there.
    func maySendToSocket() -> Bool {
        guard socket >= 0, isAttached else { return false }
        guard pipelineMayHoldBytes else { return true }
        guard let queued = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes), queued == 0 else {
            return false
        }
        pipelineMayHoldBytes = false
        return true
    }

    /// Writes through NIO's pipeline (not flushed), after anything held.
    /// - Parameter promise: `nil` for fan-out writes: nobody waits for them, and a promise
    ///   per recipient would be an allocation per delivery. Failures surface as channel
    ///   errors.
    package func writeThroughPipeline(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>? = nil) {
        releaseHeldToPipeline()
        pipelineMayHoldBytes = true
        context.write(NIOAny(buffer), promise: promise)
    }

    /// Moves the held buffer into the pipeline, ahead of a write that must come after it.
    func releaseHeldToPipeline() {
        guard let held else { return }
        self.held = nil
        pipelineMayHoldBytes = true
        context.write(NIOAny(held), promise: nil)
    }

    /// Sends the held buffer, or flushes the pipeline.
    /// - Parameter limit: `MAX_SENDQ_BYTES`, checked when the kernel did not take it all.
    func flush(sendQueueLimit limit: Int) {
        guard let buffer = held else {
            context.flush()
            return
        }
        held = nil
        send(buffer, sendQueueLimit: limit)
    }

    /// Writes and flushes `buffer`: straight to the socket when the session may, with what
    /// the kernel does not take (its send buffer is full) queued in NIO, which then writes
    /// it when the socket drains, as it does any write; through the pipeline otherwise.
    func send(_ buffer: ByteBuffer, sendQueueLimit limit: Int) {
        guard isAttached else { return }
        var rest = buffer
        if maySendToSocket() {
            let count = buffer.readableBytes
            // MSG_NOSIGNAL: a peer gone is an error for NIO to find, not a SIGPIPE.
            let sent = buffer.withUnsafeReadableBytes {
                Glibc.send(socket, $0.baseAddress, count, CInt(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if sent == count { return }
            // -1 (EAGAIN: the send buffer is full; or the connection failed, which NIO's own
            // write then meets and closes on): all of it goes to NIO.
            if sent > 0 { rest.moveReaderIndex(forwardBy: sent) }
        }
        writeThroughPipeline(rest)
        // Counted before the flush, as every write is (see closeIfSendQueueExceeds).
        closeIfSendQueueExceeds(limit)
        context.flush()
    }
}

@available(*, unavailable)
extension LocalSession: Sendable {}
