import ChatCore
import NIOCore

/// The shards (event loops) a line must go to, as a bit set: bit `n` is shard `n`.
typealias ShardSet = UInt64

/// What applying a command causes, as a value: who receives which (already encoded)
/// lines, which request gets which answer, which session is closed.
///
/// Effects name sessions by their shard so that the node can hand them to the right event
/// loop; they do no I/O themselves.
enum HubEffect: Sendable {
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
    /// The session is now a member of the room: it receives `lines`, then the history.
    case enterRoom(SessionAddress, RoomID, [ByteBuffer], history: [HistoryLine])
    /// The session is no longer a member of the room.
    case exitRoom(SessionAddress, RoomID)
    /// The answer to a request the session made.
    case answer(SessionAddress, HubAnswer)
    /// Tell every connection the server is shutting down, then close it.
    case shutdown(ByteBuffer)
    /// The last connection is gone while shutting down.
    case allConnectionsClosed
}

/// The hub's answer to a request that a session waits for.
enum HubAnswer: Sendable, Equatable {
    /// Whether the new connection may stay.
    case admission(Admission)
    /// Whether a code may be mailed.
    case codeRequest(CodeRequestDecision)
    /// The username the user is online under, or why not.
    case login(Result<String, UserError>)
    /// Something the requester's node logs (moderation, rooms created).
    case note(HubNote)

    enum Admission: Sendable, Equatable {
        case admitted
        /// Refused: the line to send before closing, and the reason for the log.
        case refused(line: String)
    }

    enum CodeRequestDecision: Sendable, Equatable {
        case allowed
        case throttled(UserError)
        /// The address is banned: the connection is refused.
        case banned
    }
}

/// An event worth a line in the server log, told to the node of the session that caused it.
enum HubNote: Sendable, Equatable {
    case roomCreated(String, isPrivate: Bool)
    case kicked(user: String, room: String)
    case banned(user: String, emailKey: String, ip: String, minutes: Int)
    case unbanned(String)
    case wall(String)
}

/// A line kept in a room's history, with its sender's lower-cased name, so that a replay
/// leaves out the senders the joiner ignores.
struct HistoryLine: Sendable {
    let line: ByteBuffer
    let sender: String
}
