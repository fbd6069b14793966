import ChatCore
import NIOCore

/// The shards (event loops) a line must go to, as a bit set: bit `n` is shard `n`.
package typealias ShardSet = UInt64

/// What applying a command causes, as a value: who receives which (already encoded)
/// lines, which request gets which answer, which session is closed.
///
/// Effects name sessions by their shard so that the node can hand them to the right event
/// loop; they do no I/O themselves.
package enum HubEffect: Sendable {
    /// A line for every member of the room on these shards; `from` is the sender's
    /// lower-cased name, for members who ignore them.
    case room(RoomID, ByteBuffer, from: String?, shards: ShardSet)
    /// A join or leave notice for the room's members on these shards but its subject.
    case presence(RoomID, ByteBuffer, except: SessionID, shards: ShardSet)
    /// Lines for one session.
    case lines(SessionAddress, [ByteBuffer])
    /// A private message for one session, from the sender with this lower-cased name.
    case privateMessage(SessionAddress, ByteBuffer, from: String)
    /// A line for everyone online.
    case everyone(ByteBuffer)
    /// Lines for one session, then its connection is closed.
    case disconnect(SessionAddress, [ByteBuffer])
    /// The connection's slot was released for it (its node was declared gone): it is
    /// closed without a line, by whichever of its node's shards holds it.
    case close(SessionID)
    /// The session is now a member of the room: it receives `lines`, then the history.
    case enterRoom(SessionAddress, RoomID, [ByteBuffer], history: [HistoryLine])
    /// The session is no longer a member of the room.
    case exitRoom(SessionAddress, RoomID)
    /// The answer to a request the session made.
    case answer(SessionAddress, HubAnswer)
    /// A user took a new name: every session on every node that ignores the old name, or
    /// would `/reply` to it, now means the new one.
    case renamed(fromKey: String, to: String)
    /// Tell every connection the server is shutting down, then close it.
    case shutdown(ByteBuffer)
    /// The last connection is gone while shutting down.
    case allConnectionsClosed
}
