import ChatCore
import ChatHub
import Logging

/// One connection's session from admission to goodbye, without any I/O: the whole login
/// (admission, ban refusal, code request and throttles, the pending code, mail failure,
/// the login deadline, claiming a name), then chatting through the ``CommandRouter``.
///
/// The connection handler feeds it events (a line arrived, the hub answered, a mail was
/// sent, a code was checked, time ran out, the connection closed) and carries out the
/// ``SessionAction``s it returns. The hub's answers may come at any later time (through a
/// shared log, after a round trip): while one is awaited, input waits
/// (``isWaiting``), so lines are handled in order and against the right state.
struct SessionStateMachine {
    enum State: Equatable {
        /// Asked the hub for a connection slot.
        case connecting
        case awaitingEmail
        /// Asked the hub whether a code may be mailed.
        case requestingCode(EmailAddress)
        /// The code is being mailed.
        case sendingCode(EmailAddress)
        case awaitingCode(EmailAddress)
        case awaitingUsername(EmailAddress)
        /// Asked the hub for the name.
        case claiming(EmailAddress)
        /// Asked the hub whether the token is valid (and to end its account's stale session).
        case resuming(ResumeToken)
        /// Refused for the per-IP limit while the address's slot is held by an account with
        /// resume tokens: for ``resumeGrace`` the connection may still `/resume`, which
        /// replaces that account's stale session and passes its slot on.
        case refusedUntilResumed
        case chatting(username: String)
        case closed
    }

    /// How long a connection refused for the per-IP limit may still `/resume`.
    static let resumeGrace: Duration = .seconds(10)

    /// Who this session is: where the hub sends its answers, and the client's address.
    struct Identity: Sendable {
        var address: SessionAddress
        /// The per-IP limit key (IPv6: the /64).
        var ip: String
        /// The address as people see it (the per-IP refusal names it).
        var displayIP: String
    }

    private(set) var state = State.connecting
    let identity: Identity
    let policy: Policy
    private var usernameRules: UsernameRules { policy.usernameRules }
    private var maxEmailAttempts: Int { policy.maxEmailAttempts }
    private var adminEmails: Set<String> { policy.adminEmails }
    private var invalidEmails = 0
    private var admitted = false
    /// The code this session asked for, revoked when the session ends first.
    private var pendingCode: (email: EmailAddress, ticket: UInt64)?
    /// The token this connection resumed with or was given: what `/logout` revokes.
    private var token: ResumeToken?
    /// The token `/token` asked for, shown once the hub holds its hash.
    private var pendingToken: ResumeToken?
    /// A resumed account's room, where its login puts it back.
    private var resumeRoomKey: String?

    init(identity: Identity, policy: Policy) {
        self.identity = identity
        self.policy = policy
    }

    /// A session with a policy of its own.
    init(
        identity: Identity, usernameRules: UsernameRules, maxEmailAttempts: Int = 5, adminEmails: Set<String> = [],
        makeToken: @escaping @Sendable () -> ResumeToken = ResumeToken.random
    ) {
        self.init(
            identity: identity,
            policy: Policy(
                usernameRules: usernameRules, maxEmailAttempts: maxEmailAttempts, adminEmails: adminEmails,
                makeToken: makeToken))
    }

    /// Whether input must wait for an answer (the hub's, or the mail's).
    var isWaiting: Bool {
        switch state {
        case .connecting, .requestingCode, .sendingCode, .claiming, .resuming: return true
        case .awaitingEmail, .awaitingCode, .awaitingUsername, .refusedUntilResumed, .chatting, .closed: return false
        }
    }

    /// Whether the next line can be handled now: the session is live and waits for nothing.
    var acceptsInput: Bool { state != .closed && !isWaiting }

    /// Whether the session is live (not closed).
    var isOpen: Bool { state != .closed }

    /// The name the user is online under.
    var username: String? {
        if case .chatting(let username) = state { return username }
        return nil
    }

    // MARK: Events

    /// The connection is up: ask for a slot.
    func connected() -> SessionAction {
        .submit(.admit(identity.address, ip: identity.ip, display: identity.displayIP))
    }

    /// A trimmed, non-empty line arrived (and the session is not waiting).
    mutating func lineReceived(_ line: Substring) -> SessionAction {
        if case .chatting = state {
            switch ChatCommand.parse(line) {
            case .success(.quit): return close([ServerLine.goodbye])
            case .success(.nick(let name)):
                // The rules of a login; the hub decides whether the name is free.
                if let violation = usernameRules.violation(in: Substring(name)) {
                    return .send([UserError.invalidUsername(violation).line])
                }
                return .submit(.rename(identity.address.id, to: name))
            case .success(.token):
                let token = policy.makeToken()
                pendingToken = token
                return .submit(.issueToken(identity.address.id, hash: token.hash))
            case .success(.logout(let all)):
                guard all || token != nil else { return close([ServerLine.goodbye]) }
                return .log(.info, all ? "Signed out: every resume token revoked" : "Signed out: resume token revoked")
                    + .submit(.revokeTokens(identity.address.id, hash: all ? nil : token?.hash))
                    + close([ServerLine.goodbye])
            case .success(let command): return .route(command)
            case .failure(let error): return .send([error.line])
            }
        }
        if line.lowercased() == "/quit" { return close([ServerLine.goodbye]) }
        switch Self.resumeRequest(in: line) {
        case .token(let token) where state == .awaitingEmail || state == .refusedUntilResumed:
            // The token itself goes no further than this connection: the hub gets its hash.
            state = .resuming(token)
            return .submit(
                .resume(
                    identity.address, hash: token.hash, ip: identity.ip, display: identity.displayIP,
                    admitted: admitted))
        case .missingToken where state == .awaitingEmail:
            return .send([UserError.usage("/resume <token>").line, ServerLine.emailPrompt])
        default:
            break
        }
        switch state {
        case .awaitingEmail:
            guard let email = EmailAddress(line) else {
                invalidEmails += 1
                if invalidEmails >= maxEmailAttempts {
                    return .count(.loginFailed(.invalidEmail))
                        + close([
                            ServerLine.verifyingEmail, UserError.invalidEmail.line, UserError.tooManyInvalidEmails.line,
                        ])
                }
                return .count(.loginFailed(.invalidEmail))
                    + .send([ServerLine.verifyingEmail, UserError.invalidEmail.line, ServerLine.emailPrompt])
            }
            // "Please wait" comes with the hub's answer: a node that cannot reach the hub
            // log answers with the outage error alone, not a wait that leads nowhere.
            state = .requestingCode(email)
            return .submit(.requestCode(identity.address, emailKey: email.key, ip: identity.ip))
        case .awaitingCode(let email):
            return .verifyCode(line, email)
        case .awaitingUsername(let email):
            if let violation = usernameRules.violation(in: line) {
                return .count(.loginFailed(.invalidUsername))
                    + .send([UserError.invalidUsername(violation).line, usernamePrompt])
            }
            state = .claiming(email)
            return .submit(claim(String(line), email))
        case .refusedUntilResumed:
            // Told it was refused; only a resume could have let it in.
            return close([])
        case .connecting, .requestingCode, .sendingCode, .claiming, .resuming, .chatting, .closed:
            return .none
        }
    }

    /// The login command for a name: a resumed account's goes back to its room.
    private func claim(_ username: String, _ email: EmailAddress) -> HubCommand {
        let isOperator = adminEmails.contains(email.key)
        guard let resumeRoomKey else {
            return .login(
                identity.address, username: username, emailKey: email.key, ip: identity.ip, isOperator: isOperator)
        }
        return .loginResumed(
            identity.address, username: username, emailKey: email.key, ip: identity.ip, isOperator: isOperator,
            roomKey: resumeRoomKey)
    }

    private enum ResumeRequest {
        case token(ResumeToken)
        case missingToken
        case none
    }

    /// `/resume <token>` (the command word in any case).
    private static func resumeRequest(in line: Substring) -> ResumeRequest {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.first?.lowercased() == "/resume" else { return .none }
        guard words.count == 2 else { return .missingToken }
        return .token(ResumeToken(token: String(words[1])))
    }

    /// A line longer than the limit arrived (its bytes were dropped, up to its end).
    func lineTooLong(maximum: Int) -> SessionAction {
        guard isOpen else { return .none }
        return .send([UserError.lineTooLong(maximum: maximum).line])
    }

    /// More lines than `MAX_QUEUED_LINES` are held back by flood control: the client sends
    /// faster than it may, for longer than a paste.
    mutating func flooded(queued: Int, heldBack: Int) -> SessionAction {
        guard isOpen else { return .none }
        return .log(
            .warning, "Disconnecting flooding client: over MAX_QUEUED_LINES lines held back",
            ["queued": "\(queued)", "held_back": "\(heldBack)"])
            + .count(.disconnectedFlooding) + close([UserError.flooding.line])
    }

    /// The connection failed (a reset, a TLS error): it is closed without a word.
    mutating func failed(_ error: any Error) -> SessionAction {
        guard isOpen else { return .none }
        return .log(.debug, "Connection error", ["error": "\(error)"]) + close([])
    }

    /// The hub answered a request.
    mutating func answered(_ answer: HubAnswer) -> SessionAction {
        switch (answer, state) {
        case (.admission(.admitted), .connecting):
            admitted = true
            state = .awaitingEmail
            return .log(.info, "Client connected") + .startLoginTimer + .send(ServerLine.welcome)
        case (.admission(.refused(let line, let reason)), .connecting):
            return .log(.info, "Connection refused", ["reason": "\(line)"]) + .count(.refused(reason)) + close([line])
        case (.admission(.refusedUnlessResumed(let line)), .connecting):
            state = .refusedUntilResumed
            return .log(.info, "Connection refused; it may still resume", ["reason": "\(line)"])
                + .count(.refused(.ipLimit)) + .startResumeGrace + .send([line])
        case (.resume(.accepted(let emailKey, let place)), .resuming(let token)):
            guard let email = EmailAddress(emailKey) else { return close([UserError.invalidResumeToken.line]) }
            let wasAdmitted = admitted
            admitted = true
            self.token = token
            resumeRoomKey = place?.roomKey ?? RoomName.general.key
            // A connection let in only now (past the per-IP refusal) gets its login deadline.
            let resumed: SessionAction = .log(.info, "Resumed") + (wasAdmitted ? .none : .startLoginTimer)
            guard let place else {
                state = .awaitingUsername(email)
                return resumed + .send([usernamePrompt])
            }
            state = .claiming(email)
            return resumed + .submit(claim(place.name, email))
        case (.resume(.refused(let error)), .resuming):
            let refused: SessionAction =
                .log(.notice, "Resume refused", ["reason": "\(error.message)"]) + .count(.loginFailed(.invalidToken))
            guard admitted else { return refused + close([error.line]) }
            state = .awaitingEmail
            return refused + .send([error.line, ServerLine.emailPrompt])
        case (.resume(.notAdmitted(let line, let reason)), .resuming):
            return .log(.info, "Connection refused", ["reason": "\(line)"]) + .count(.refused(reason)) + close([line])
        case (.tokenIssued, .chatting):
            guard let issued = pendingToken else { return .none }
            pendingToken = nil
            token = issued
            return .log(.info, "Resume token issued") + .send([ServerLine.resumeToken(issued.token)])
        case (.codeRequest(.allowed), .requestingCode(let email)):
            state = .sendingCode(email)
            return .send([ServerLine.verifyingEmail]) + .mailCode(email)
        case (.codeRequest(.throttled(let error)), .requestingCode):
            state = .awaitingEmail
            return .log(.notice, "OTP request throttled", ["reason": "\(error.message)"]) + .count(.codeThrottled)
                + .send([ServerLine.verifyingEmail, error.line, ServerLine.emailPrompt])
        case (.codeRequest(.unavailable), .requestingCode):
            state = .awaitingEmail
            return .count(.loginFailed(.chatUnavailable))
                + .send([UserError.chatUnavailable.line, ServerLine.emailPrompt])
        case (.codeRequest(.banned), .requestingCode):
            return .log(.info, "Login refused: e-mail address is banned") + .count(.loginFailed(.banned))
                + close([ServerLine.verifyingEmail, UserError.banned.line])
        case (.login(.success(let username)), .claiming(let email)):
            state = .chatting(username: username)
            let role: Logger.Metadata = adminEmails.contains(email.key) ? ["operator": "true"] : [:]
            return .log(.info, "User logged in", role) + .stopLoginTimer + .count(.loggedIn)
        case (.login(.failure(.banned)), .claiming):
            return .log(.info, "Login refused: banned") + .count(.loginFailed(.banned)) + close([UserError.banned.line])
        case (.login(.failure(let error)), .claiming(let email)):
            // The hub refuses a name because it is taken (or the user is banned, above), or
            // a cluster node could not reach the hub log.
            state = .awaitingUsername(email)
            let reason: LoginFailure = error == .chatUnavailable ? .chatUnavailable : .usernameTaken
            return .count(.loginFailed(reason)) + .send([error.line, usernamePrompt])
        case (.renamed(let old, let new), .chatting):
            state = .chatting(username: new)
            return .log(.info, "User changed name", ["previous_user": "\(old)"])
        case (.note(let note), _):
            return Self.log(note)
        default:
            // An answer the session no longer waits for (it closed meanwhile).
            return .none
        }
    }

    /// The code for the address was issued under `ticket` (and is being mailed).
    mutating func codeIssued(ticket: UInt64) {
        guard case .sendingCode(let email) = state else { return }
        pendingCode = (email, ticket)
    }

    /// The mail with the code was handed over for delivery, or not.
    mutating func codeMailed(success: Bool) -> SessionAction {
        guard case .sendingCode(let email) = state else { return .none }
        if success {
            state = .awaitingCode(email)
            return .send([ServerLine.otpSent, ServerLine.otpPrompt])
        }
        state = .awaitingEmail
        return revokePendingCode() + .send([UserError.mailFailed.line, ServerLine.emailPrompt])
    }

    /// The guess was checked.
    mutating func codeChecked(_ verification: OTPStore.Verification) -> SessionAction {
        guard case .awaitingCode(let email) = state else { return .none }
        if case .invalid = verification {
            // Still pending, and ours to revoke if the connection ends.
        } else {
            pendingCode = nil
        }
        switch verification {
        case .verified:
            state = .awaitingUsername(email)
            return .submit(.codeUsed(emailKey: email.key)) + .send([ServerLine.otpVerified, usernamePrompt])
        case .invalid(let attemptsLeft):
            return .count(.loginFailed(.invalidCode))
                + .send([UserError.invalidCode(attemptsLeft: attemptsLeft).line, ServerLine.otpPrompt])
        case .attemptsExhausted:
            return .count(.loginFailed(.tooManyAttempts)) + close([UserError.tooManyAttempts.line])
        case .expired:
            state = .awaitingEmail
            return .count(.loginFailed(.codeExpired)) + .send([UserError.codeExpired.line, ServerLine.emailPrompt])
        case .noCode:
            state = .awaitingEmail
            return .count(.loginFailed(.noCode)) + .send([UserError.noCodePending.line, ServerLine.emailPrompt])
        }
    }

    /// The time allowed to log in is up.
    mutating func loginTimedOut() -> SessionAction {
        switch state {
        case .chatting, .closed: return .none
        case .refusedUntilResumed: return close([])
        default:
            return .log(.info, "Login timed out") + .count(.loginFailed(.timedOut))
                + close([UserError.loginTimedOut.line])
        }
    }

    /// The connection is gone, whoever closed it: forget the pending code, give the slot
    /// (and the name) back.
    /// - Parameter slowConsumer: the server closed it for more than `MAX_SENDQ_BYTES`
    ///   queued for a client that does not read.
    mutating func closed(slowConsumer: Bool = false) -> SessionAction {
        state = .closed
        var action = revokePendingCode() + .submit(.release(identity.address.id))
        if slowConsumer {
            action =
                action + .log(.warning, "Disconnected slow consumer: more than MAX_SENDQ_BYTES queued for it")
                + .count(.disconnectedSlowConsumer)
        } else if admitted {
            action = action + .log(.info, "Client disconnected")
        }
        return action
    }

    // MARK: Helpers

    private mutating func close(_ lines: [String]) -> SessionAction {
        state = .closed
        return .close(lines)
    }

    private mutating func revokePendingCode() -> SessionAction {
        guard let pendingCode else { return .none }
        self.pendingCode = nil
        return .revokeCode(pendingCode.email, ticket: pendingCode.ticket)
    }

    private var usernamePrompt: String {
        ServerLine.usernamePrompt(minLength: usernameRules.minimumLength, maxLength: usernameRules.maximumLength)
    }

    private static func log(_ note: HubNote) -> SessionAction {
        switch note {
        case .roomCreated(let room, let isPrivate):
            return .log(.info, "Room created", ["room": "\(room)", "private": "\(isPrivate)"])
        case .kicked(let user, let room):
            return .log(.notice, "Moderation: kick", ["target": "\(user)", "room": "\(room)"])
        case .banned(let user, let emailKey, let ip, let minutes):
            return .log(
                .notice, "Moderation: ban",
                ["target": "\(user)", "target_email": "\(emailKey)", "target_ip": "\(ip)", "minutes": "\(minutes)"])
        case .unbanned(let target):
            return .log(.notice, "Moderation: unban", ["target": "\(target)"])
        case .wall(let text):
            return .log(.notice, "Moderation: wall", ["text": "\(text)"])
        }
    }
}
