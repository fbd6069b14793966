import NIOCore

/// Work for one event loop's shard: who on this loop receives which encoded lines.
///
/// The hub queues events while it holds its lock, so every shard sees the events of a
/// room in the same order: that is the per-room total order.
package enum ShardEvent: Sendable {
    /// A line for every local member of the room. `from` is the sender's lower-cased
    /// name, for members who ignore them.
    case room(RoomID, ByteBuffer, from: String?)
    /// A join or leave notice for every local member of the room except its subject.
    /// Written at once but flushed lazily (see ``LoopShard/presenceDelay(waiting:)``).
    case presence(RoomID, ByteBuffer, except: SessionID)
    /// Lines for one session.
    case direct(SessionID, [ByteBuffer])
    /// A private message for one session, from the sender with this lower-cased name.
    case privateMessage(SessionID, ByteBuffer, from: String)
    /// A line for every local session that is online (in a room).
    case everyoneOnline(ByteBuffer)
    /// Lines for one session, then its connection is closed.
    case disconnect(SessionID, [ByteBuffer])
    /// The session's membership moves to the room; then it receives the lines, then the
    /// room's recent history without the lines of senders it ignores.
    case enterRoom(SessionID, RoomID, [ByteBuffer], history: [HistoryLine])
    /// The session is no longer a member of the room.
    case exitRoom(SessionID, RoomID)
    /// The hub's answer to a request of the session.
    case answer(SessionID, HubAnswer)
    /// See ``HubEffect/renamed(fromKey:to:)``.
    case renamed(fromKey: String, to: String)
    /// Tell every local connection and close it once the line is flushed.
    case shutdown(ByteBuffer)
    /// Close every local connection now (the shutdown grace period is over).
    case closeAll

    /// The lines this event writes (for each recipient), as the queued-lines gauge counts.
    var lineCount: Int {
        switch self {
        case .room, .presence, .privateMessage, .everyoneOnline, .shutdown: 1
        // A command's answer comes as one buffer of several lines.
        case .direct(_, let lines): lines.reduce(0) { $0 + $1.readableBytesView.count { $0 == UInt8(ascii: "\n") } }
        case .disconnect(_, let lines): lines.count
        case .enterRoom(_, _, let lines, let history): lines.count + history.count
        case .exitRoom, .answer, .renamed, .closeAll: 0
        }
    }
}
