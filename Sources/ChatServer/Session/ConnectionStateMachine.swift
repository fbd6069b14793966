import ChatCore

/// One connection's progress from greeting to chat, without any I/O.
///
/// The handler feeds it events (a line arrived, a mail was sent, a code was checked, a
/// username was claimed) and carries out the action it returns. Keeping the decisions
/// here makes the login flow testable without a channel.
struct ConnectionStateMachine {
    enum State: Equatable {
        case awaitingEmail
        /// The code is being mailed; lines that arrive meanwhile wait.
        case sendingCode(EmailAddress)
        case awaitingCode(EmailAddress)
        case awaitingUsername(EmailAddress)
        case chatting(username: String)
        case closed
    }

    enum Action: Equatable {
        /// Send these lines to the client.
        case reply([String])
        /// Send these lines, then issue and mail a code to the address.
        case sendCode(EmailAddress, reply: [String])
        /// Check the guess against the pending code for the address.
        case verifyCode(Substring, EmailAddress)
        /// Claim the (valid) username for this connection.
        case claimUsername(String, EmailAddress)
        /// Carry out a chat command.
        case command(ChatCommand)
        /// Send these lines, then close the connection.
        case close([String])
    }

    private(set) var state = State.awaitingEmail
    let usernameRules: UsernameRules
    /// Invalid addresses allowed before the connection is closed.
    let maxEmailAttempts: Int
    private var invalidEmails = 0

    init(usernameRules: UsernameRules, maxEmailAttempts: Int = 5) {
        self.usernameRules = usernameRules
        self.maxEmailAttempts = maxEmailAttempts
    }

    /// Whether lines must wait until an asynchronous step (the mail) finishes.
    var isWaiting: Bool {
        if case .sendingCode = state { return true }
        return false
    }

    /// A trimmed, non-empty line arrived.
    mutating func lineReceived(_ line: Substring) -> Action {
        if case .chatting = state {
            switch ChatCommand.parse(line) {
            case .success(.quit):
                state = .closed
                return .close([ServerLine.goodbye])
            case .success(let command):
                return .command(command)
            case .failure(let error):
                return .reply([error.line])
            }
        }
        if line.lowercased() == "/quit" {
            state = .closed
            return .close([ServerLine.goodbye])
        }
        switch state {
        case .awaitingEmail:
            guard let email = EmailAddress(line) else {
                invalidEmails += 1
                if invalidEmails >= maxEmailAttempts {
                    state = .closed
                    return .close([
                        ServerLine.verifyingEmail, UserError.invalidEmail.line, UserError.tooManyInvalidEmails.line,
                    ])
                }
                return .reply([ServerLine.verifyingEmail, UserError.invalidEmail.line, ServerLine.emailPrompt])
            }
            state = .sendingCode(email)
            return .sendCode(email, reply: [ServerLine.verifyingEmail])
        case .awaitingCode(let email):
            return .verifyCode(line, email)
        case .awaitingUsername(let email):
            if let violation = usernameRules.violation(in: line) {
                return .reply([UserError.invalidUsername(violation).line, usernamePrompt])
            }
            return .claimUsername(String(line), email)
        case .sendingCode, .chatting, .closed:
            return .reply([])
        }
    }

    /// The mail with the code was handed over for delivery, or not.
    mutating func codeMailed(success: Bool) -> Action {
        guard case .sendingCode(let email) = state else { return .reply([]) }
        if success {
            state = .awaitingCode(email)
            return .reply([ServerLine.otpSent, ServerLine.otpPrompt])
        }
        return codeNotSent(.mailFailed)
    }

    /// No code was sent: the mail failed, or a throttle refused it.
    mutating func codeNotSent(_ error: UserError) -> Action {
        guard case .sendingCode = state else { return .reply([]) }
        state = .awaitingEmail
        return .reply([error.line, ServerLine.emailPrompt])
    }

    /// The guess was checked.
    mutating func codeChecked(_ verification: OTPStore.Verification) -> Action {
        guard case .awaitingCode(let email) = state else { return .reply([]) }
        switch verification {
        case .verified:
            state = .awaitingUsername(email)
            return .reply([ServerLine.otpVerified, usernamePrompt])
        case .invalid(let attemptsLeft):
            return .reply([UserError.invalidCode(attemptsLeft: attemptsLeft).line, ServerLine.otpPrompt])
        case .attemptsExhausted:
            state = .closed
            return .close([UserError.tooManyAttempts.line])
        case .expired:
            state = .awaitingEmail
            return .reply([UserError.codeExpired.line, ServerLine.emailPrompt])
        case .noCode:
            state = .awaitingEmail
            return .reply([UserError.noCodePending.line, ServerLine.emailPrompt])
        }
    }

    /// The hub accepted or refused the username. On success the hub sends the welcome.
    mutating func usernameClaimed(_ result: Result<String, UserError>) -> Action {
        guard case .awaitingUsername = state else { return .reply([]) }
        switch result {
        case .success(let username):
            state = .chatting(username: username)
            return .reply([])
        case .failure(let error):
            return .reply([error.line, usernamePrompt])
        }
    }

    mutating func closed() {
        state = .closed
    }

    private var usernamePrompt: String {
        ServerLine.usernamePrompt(minLength: usernameRules.minimumLength, maxLength: usernameRules.maximumLength)
    }
}
