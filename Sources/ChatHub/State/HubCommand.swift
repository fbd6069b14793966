import ChatCore

/// A change to the shared chat state, as a value: the only way the state changes.
///
/// Commands are what a ``HubLog`` orders and ``HubState/apply(_:at:)`` applies. They carry
/// what every replica must agree on and nothing secret: a code request says "a code was
/// asked for this address from this IP", never the code.
package enum HubCommand: Codable, Equatable, Sendable {
    // MARK: Connections

    /// A new connection from `ip` (the per-IP limit key; `display` is the address as people
    /// see it) asks for a slot. Answered with ``HubAnswer/admission(_:)``.
    case admit(SessionAddress, ip: String, display: String)
    /// The connection is gone: its user (if online) leaves, its slot is free.
    case release(SessionID)

    // MARK: Logging in

    /// A code is wanted for the address: bans and throttles decide. Answered with
    /// ``HubAnswer/codeRequest(_:)``.
    case requestCode(SessionAddress, emailKey: String, ip: String)
    /// A code for the address was used to log in: it stops counting against the address.
    case codeUsed(emailKey: String)
    /// A verified user claims a name. Answered with ``HubAnswer/login(_:)``; on success the
    /// user is online and in `#general`.
    case login(SessionAddress, username: String, emailKey: String, ip: String, isOperator: Bool)

    // MARK: Staying signed in

    /// `/token`: the session's account gets a resume token, valid for
    /// `RESUME_TOKEN_DAYS`. Only the token's SHA-256 (hexadecimal) is here: the token itself
    /// never enters the log. Answered with ``HubAnswer/tokenIssued``.
    case issueToken(SessionID, hash: String)
    /// `/logout`: the token with this hash stops working; `nil` (`/logout all`): every
    /// token of the session's account does.
    case revokeTokens(SessionID, hash: String?)
    /// `/resume` at the e-mail prompt: a valid token names its account, whose session on
    /// any node (a stale one) is replaced: closed, its name and IP slot freed at once.
    /// `admitted`: whether the connection holds its slot already (else it was refused for
    /// the per-IP limit, and asks for a slot now that the stale one may have freed it).
    /// Answered with ``HubAnswer/resume(_:)``.
    case resume(SessionAddress, hash: String, ip: String, display: String, admitted: Bool)
    /// A resumed account claims its name: as ``login``, but welcomed back, into `roomKey`
    /// (when it still exists and may be entered; else `#general`).
    case loginResumed(
        SessionAddress, username: String, emailKey: String, ip: String, isOperator: Bool, roomKey: String)

    // MARK: Chatting

    /// A chat line (or a `/me` action) to the session's room; the text is sanitised.
    case say(SessionID, text: String, isAction: Bool)
    case join(SessionID, room: RoomName)
    case create(SessionID, room: RoomName, isPrivate: Bool)
    case leave(SessionID)
    case invite(SessionID, target: String)
    case kick(SessionID, target: String)
    case setTopic(SessionID, text: String)
    case privateMessage(SessionID, target: String, text: String)
    /// Away with this message (sanitised), or back (`nil`).
    case setAway(SessionID, message: String?)
    /// `/nick`: the user takes `name` (already checked against the username rules).
    case rename(SessionID, to: String)
    /// `/drop`: an empty room goes.
    case dropRoom(SessionID, room: RoomName)

    // MARK: Operators

    case ban(SessionID, target: String, minutes: Int)
    case unban(SessionID, target: String)
    case wall(SessionID, text: String)

    // MARK: Cluster

    /// A node is gone (its heartbeat expired): every connection it held is released, as
    /// if each had closed. Idempotent: a node with nothing left changes nothing.
    case nodeDown(NodeNumber)
    /// Redis lost the log: a node announces its connections again, in a fresh log that
    /// every replica rebuilds its state from. A name another node announced first is not
    /// taken over: that user is told and disconnected.
    case reannounce(NodeNumber, [Reannouncement])

    // MARK: Housekeeping

    /// Forget expired bans and throttle entries, so memory does not grow.
    case sweep
    /// Refuse new connections and tell everyone; the last line each user receives.
    case shutdown
}
