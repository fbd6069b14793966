import NIOCore

/// A connection as its event loop's shard sees it: where to write, and its place in the
/// shard's room membership. Lives on one event loop and is touched only there.
package final class LocalSession {
    package let id: SessionID
    let context: ChannelHandlerContext
    /// The room the shard has this session in, and its index in that room's member list.
    var room: RoomID?
    var roomSlot = -1
    /// Written to since the last flush.
    var isDirty = false
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
    /// Set when the server closed the connection because the client does not read.
    package var disconnectedAsSlowConsumer = false

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

    package init(id: SessionID, context: ChannelHandlerContext) {
        self.id = id
        self.context = context
    }
}

@available(*, unavailable)
extension LocalSession: Sendable {}
