/// Every mistake a user can make, turned into the one `ERROR: ...` text they see.
///
/// Internal code throws or returns these; only ``message`` produces user-facing text, so
/// the wording lives in one place.
public enum UserError: Error, Equatable, Sendable {
    case invalidEmail
    case mailFailed
    case invalidCode(attemptsLeft: Int)
    case tooManyAttempts
    case codeExpired
    case noCodePending
    case invalidUsername(UsernameRules.Violation)
    case usernameTaken(String)
    case messageTooLong(maximum: Int)
    case lineTooLong(maximum: Int)
    case unknownCommand(String)
    case usage(String)
    case invalidRoomName
    case alreadyInRoom(String)
    case alreadyInDefaultRoom
    case userNotOnline(String)
    case messageToSelf
    /// `/resume` with a token that is unknown, expired, revoked, or whose account is banned.
    case invalidResumeToken
    /// Too many `/resume` attempts from the client's address (or server-wide) this hour.
    case tooManyResumeAttempts(retryAfterSeconds: Int)
    case ipLimitReached(String)
    case roomExists(String)
    case privateRoom(String)
    case notInPrivateRoom
    case alreadyMember(String, room: String)
    case notInYourRoom(String, room: String)
    case ownerOnly(String)
    case operatorOnly(String)
    case notToYourself
    case cannotKickFromDefaultRoom
    case noOneToReply
    case notIgnoring(String)
    case noSuchCommand(String)
    case noBan(String)
    case banned
    case topicTooLong(maximum: Int)
    case tooManyCodes(retryAfterSeconds: Int)
    case tooManyRooms
    case tooManyOwnedRooms(Int)
    case noSuchRoom(String)
    case roomNotEmpty(String)
    case cannotDropDefaultRoom
    /// `/nick` with the name the user already has.
    case alreadyNamed(String)
    case renamingTooFast(retryAfterSeconds: Int)
    case tooManyInvalidEmails
    case loginTimedOut
    case serverFull
    case connectingTooFast(retryAfterSeconds: Int)
    case flooding
    /// A cluster node cannot reach the Redis that carries its hub log.
    case chatUnavailable

    /// The text after `ERROR: `.
    public var message: String {
        switch self {
        case .invalidEmail:
            return "Invalid email address."
        case .mailFailed:
            return "Failed to send OTP. Please try again later."
        case .invalidCode(let attemptsLeft):
            return "Invalid OTP code (\(attemptsLeft) attempts left)."
        case .tooManyAttempts:
            return "Maximum verification attempts exceeded."
        case .codeExpired:
            return "OTP has expired."
        case .noCodePending:
            return "No OTP code is pending for this address. Please request a new one."
        case .invalidUsername(let violation):
            return violation.message
        case .usernameTaken(let name):
            return "Username '\(name)' is already taken."
        case .messageTooLong(let maximum):
            return "Message too long. Maximum length is \(maximum) characters."
        case .lineTooLong(let maximum):
            return "Line too long. Maximum length is \(maximum) bytes; the line was discarded."
        case .unknownCommand(let command):
            return "Unknown command: \(command). Type /help for available commands."
        case .usage(let usage):
            return "Usage: \(usage)"
        case .invalidRoomName:
            return "Invalid room name. Use # followed by 1-32 letters, digits, '_' or '-'."
        case .alreadyInRoom(let room):
            return "You are already in \(room)."
        case .alreadyInDefaultRoom:
            return "You are already in the default room."
        case .userNotOnline(let name):
            return "User '\(name)' is not online."
        case .messageToSelf:
            return "You cannot send a private message to yourself."
        case .invalidResumeToken:
            return "Invalid or expired resume token."
        case .tooManyResumeAttempts(let seconds):
            return "Too many sign-in attempts. Try again in \(seconds) seconds."
        case .ipLimitReached(let ip):
            return "IP address \(ip) already has an active connection"
        case .roomExists(let room):
            return "Room \(room) already exists."
        case .privateRoom(let room):
            return "\(room) is private. Ask a member for an invite."
        case .notInPrivateRoom:
            return "You are not in a private room."
        case .alreadyMember(let user, let room):
            return "\(user) is already in \(room)."
        case .notInYourRoom(let user, let room):
            return "\(user) is not in \(room)."
        case .ownerOnly(let room):
            return "Only the owner of \(room) or a server operator can do that."
        case .operatorOnly(let command):
            return "Only server operators can use \(command)."
        case .notToYourself:
            return "You cannot do that to yourself."
        case .cannotKickFromDefaultRoom:
            return "Nobody can be kicked from the default room."
        case .noOneToReply:
            return "Nobody has sent you a private message yet."
        case .notIgnoring(let user):
            return "You are not ignoring \(user)."
        case .noSuchCommand(let command):
            return "No such command: \(command). Type /help for available commands."
        case .noBan(let target):
            return "No active ban for \(target)."
        case .banned:
            return "You are banned from this server."
        case .topicTooLong(let maximum):
            return "Topic too long. Maximum length is \(maximum) characters."
        case .tooManyCodes(let seconds):
            return "Too many codes requested. Try again in \(seconds) seconds."
        case .tooManyRooms:
            return "Too many rooms on this server. Please try again later."
        case .tooManyOwnedRooms(let limit):
            return "You already own \(limit) rooms. Use /drop <room> to remove one first."
        case .noSuchRoom(let room):
            return "There is no room \(room)."
        case .roomNotEmpty(let room):
            return "\(room) is not empty; only an empty room can be dropped."
        case .cannotDropDefaultRoom:
            return "#general cannot be dropped."
        case .alreadyNamed(let name):
            return "You are already known as \(name)."
        case .renamingTooFast(let seconds):
            return "Too many name changes. Try again in \(seconds) seconds."
        case .tooManyInvalidEmails:
            return "Too many invalid email addresses."
        case .loginTimedOut:
            return "Login timed out."
        case .serverFull:
            return "Server is full. Please try again later."
        case .connectingTooFast(let seconds):
            return "Too many connections from your address. Try again in \(seconds) seconds."
        case .flooding:
            return "You are sending too fast (flooding). Disconnected."
        case .chatUnavailable:
            return "The chat is briefly unavailable. Please try again in a moment."
        }
    }

    /// The full line: `ERROR: ...`.
    public var line: String { ServerLine.error(message) }
}
