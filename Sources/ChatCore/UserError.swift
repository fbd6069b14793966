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
    case ipLimitReached(String)

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
        case .ipLimitReached(let ip):
            return "IP address \(ip) already has an active connection"
        }
    }

    /// The full line: `ERROR: ...`.
    public var line: String { ServerLine.error(message) }
}
