import ChatCore
import ChatHub
import Logging

/// What a session asks its connection to do in answer to one event: one value, not a list
/// (a chat line passes here, and a list would be an allocation per line). The session
/// decides; the connection handler only carries the parts out, always in this order: the
/// log line, the count, the code to forget, the login timer, the lines (unless it closes),
/// the hub command, the code work, the chat command, and last, the lines and the close.
struct SessionAction: Equatable, Sendable {
    struct LogLine: Equatable, Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    enum CodeWork: Equatable, Sendable {
        /// Issue a code for the address (report the ticket with
        /// ``SessionStateMachine/codeIssued(ticket:)``) and mail it (report with
        /// ``SessionStateMachine/codeMailed(success:)``).
        case mail(EmailAddress)
        /// Check the guess against the address's pending code; report with
        /// ``SessionStateMachine/codeChecked(_:)``.
        case verify(Substring, EmailAddress)
    }

    enum LoginTimer: Equatable, Sendable {
        /// Start the time allowed to log in; report its end with
        /// ``SessionStateMachine/loginTimedOut()``.
        case start
        /// The user is logged in: the deadline no longer applies (its scheduled task and
        /// what it holds are let go now, not when it would have fired).
        case stop
        /// A connection refused for the per-IP limit may `/resume` for
        /// ``SessionStateMachine/resumeGrace``; report its end with
        /// ``SessionStateMachine/loginTimedOut()``.
        case startResumeGrace
    }

    /// Write a line to the server log, with the connection's metadata.
    var log: LogLine?
    /// Count this in the server's metrics.
    var count: SessionEvent?
    /// Forget the code issued under this ticket (the connection that asked is gone).
    var revokeCode: (email: EmailAddress, ticket: UInt64)?
    var loginTimer: LoginTimer?
    /// Lines for the client (once online, in order with what the hub sends).
    var lines: [String] = []
    /// Hand a command to the hub log; its answer comes back as ``HubAnswer``.
    var submit: HubCommand?
    var code: CodeWork?
    /// Carry out a chat command (``CommandRouter``).
    var route: ChatCommand?
    /// Send ``lines`` straight to the socket, then close the connection.
    var closes = false

    /// Nothing to do.
    static let none = SessionAction()

    static func send(_ lines: [String]) -> SessionAction { SessionAction(lines: lines) }
    static func close(_ lines: [String]) -> SessionAction { SessionAction(lines: lines, closes: true) }
    static func submit(_ command: HubCommand) -> SessionAction { SessionAction(submit: command) }
    static func route(_ command: ChatCommand) -> SessionAction { SessionAction(route: command) }
    static func mailCode(_ email: EmailAddress) -> SessionAction { SessionAction(code: .mail(email)) }
    static func verifyCode(_ guess: Substring, _ email: EmailAddress) -> SessionAction {
        SessionAction(code: .verify(guess, email))
    }
    static func revokeCode(_ email: EmailAddress, ticket: UInt64) -> SessionAction {
        SessionAction(revokeCode: (email, ticket))
    }
    static let startLoginTimer = SessionAction(loginTimer: .start)
    static let stopLoginTimer = SessionAction(loginTimer: .stop)
    static let startResumeGrace = SessionAction(loginTimer: .startResumeGrace)
    static func log(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata = [:]) -> SessionAction {
        SessionAction(log: LogLine(level: level, message: message, metadata: metadata))
    }
    static func count(_ event: SessionEvent) -> SessionAction { SessionAction(count: event) }

    /// Both: their lines in order, and each other part from whichever has it (an event never
    /// asks for the same part twice).
    static func + (lhs: SessionAction, rhs: SessionAction) -> SessionAction {
        assert(
            (lhs.log == nil || rhs.log == nil) && (lhs.count == nil || rhs.count == nil)
                && (lhs.revokeCode == nil || rhs.revokeCode == nil) && (lhs.loginTimer == nil || rhs.loginTimer == nil)
                && (lhs.submit == nil || rhs.submit == nil) && (lhs.code == nil || rhs.code == nil)
                && (lhs.route == nil || rhs.route == nil),
            "one event asks for each part at most once")
        var both = lhs
        both.log = lhs.log ?? rhs.log
        both.count = lhs.count ?? rhs.count
        both.revokeCode = lhs.revokeCode ?? rhs.revokeCode
        both.loginTimer = lhs.loginTimer ?? rhs.loginTimer
        both.lines = lhs.lines + rhs.lines
        both.submit = lhs.submit ?? rhs.submit
        both.code = lhs.code ?? rhs.code
        both.route = lhs.route ?? rhs.route
        both.closes = lhs.closes || rhs.closes
        return both
    }

    static func == (lhs: SessionAction, rhs: SessionAction) -> Bool {
        lhs.log == rhs.log && lhs.count == rhs.count && lhs.revokeCode?.email == rhs.revokeCode?.email
            && lhs.revokeCode?.ticket == rhs.revokeCode?.ticket && lhs.loginTimer == rhs.loginTimer
            && lhs.lines == rhs.lines && lhs.submit == rhs.submit && lhs.code == rhs.code && lhs.route == rhs.route
            && lhs.closes == rhs.closes
    }
}
