import ChatCore

/// Follows the login from the server's prompts: which step the user is at, what to tell
/// them, whether what they type now is secret (the code: masked on screen and never kept in
/// the history), and their name once they are in.
public struct LoginGuide: Sendable, Equatable {
    public enum Step: Equatable, Sendable {
        case connecting
        case email
        case code
        case username
        case chatting(as: String)
    }

    public private(set) var step = Step.connecting

    public init() {}

    /// The user's name, once logged in.
    public var username: String? {
        if case .chatting(let name) = step { return name }
        return nil
    }

    /// What is typed now is an OTP code.
    public var inputIsSecret: Bool { step == .code }

    /// Follows one server line.
    /// - Returns: a hint for the user when the line starts a step.
    public mutating func follow(_ line: String) -> String? {
        if line == ServerLine.emailPrompt {
            step = .email
            return "Type your e-mail address and press Enter; a 6-digit code will be mailed to you. /quit leaves."
        }
        if line == ServerLine.otpPrompt {
            step = .code
            return "Type the code from the mail. It is hidden here and never kept in your history."
        }
        if line.hasPrefix("*** Enter username (") {
            step = .username
            return "Choose a username: letters, digits and _."
        }
        let welcome = line.hasPrefix("*** Welcome back, ") ? "*** Welcome back, " : "*** Welcome, "
        if line.hasPrefix(welcome), line.hasSuffix("! ***") {
            let name = line.dropFirst(welcome.count).dropLast("! ***".count)
            if ServerLineKind.isName(name) {
                step = .chatting(as: String(name))
                return "You are in. Tab completes commands and names, Up and Down recall what you sent, "
                    + "/help lists commands, Ctrl-D leaves."
            }
        }
        return nil
    }
}
