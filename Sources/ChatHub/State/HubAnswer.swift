import ChatCore

/// The hub's answer to a request that a session waits for.
package enum HubAnswer: Sendable, Equatable {
    /// Whether the new connection may stay.
    case admission(Admission)
    /// Whether a code may be mailed.
    case codeRequest(CodeRequestDecision)
    /// The username the user is online under, or why not.
    case login(Result<String, UserError>)
    /// The requester is online under a new name (`/nick`).
    case renamed(from: String, to: String)
    /// Something the requester's node logs (moderation, rooms created).
    case note(HubNote)

    package enum Admission: Sendable, Equatable {
        case admitted
        /// Refused: the line to send before closing, and why (for the metrics).
        case refused(line: String, reason: ConnectionRefusal)
    }

    package enum CodeRequestDecision: Sendable, Equatable {
        case allowed
        case throttled(UserError)
        /// The address is banned: the connection is refused.
        case banned
        /// The hub log cannot be reached (a cluster node without Redis): ask again later.
        case unavailable
    }
}
