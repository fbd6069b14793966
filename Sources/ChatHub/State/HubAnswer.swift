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
    /// The token asked for with `/token` is valid from now on.
    case tokenIssued
    /// What became of a `/resume`.
    case resume(ResumeDecision)

    package enum ResumeDecision: Sendable, Equatable {
        /// The token is valid: the account, and where it was (its name and room) when it
        /// has been online since it had tokens.
        case accepted(emailKey: String, place: ResumeTokens.Place?)
        /// Not valid (unknown, expired, revoked, or its account banned), or throttled.
        case refused(UserError)
        /// Valid, but the connection still has no slot (another connection from its
        /// address holds it): the line to send before closing, and why.
        case notAdmitted(line: String, reason: ConnectionRefusal)
    }

    package enum Admission: Sendable, Equatable {
        case admitted
        /// Refused: the line to send before closing, and why (for the metrics).
        case refused(line: String, reason: ConnectionRefusal)
        /// Refused for the per-IP limit, but a slot of the address is held by an account
        /// with resume tokens: the connection may `/resume` (replacing that stale session)
        /// for a few seconds before it is closed. The line is the per-IP refusal's.
        case refusedUnlessResumed(line: String)
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
