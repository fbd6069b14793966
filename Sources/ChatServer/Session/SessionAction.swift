import ChatCore
import Logging

/// What a session asks its connection to do. The session decides; the connection handler
/// only carries these out, in order.
enum SessionAction: Equatable, Sendable {
    /// Send these lines to the client (once online, in order with what the hub sends).
    case send([String])
    /// Send these lines, then close the connection.
    case close([String])
    /// Carry out a chat command (``CommandRouter``).
    case route(ChatCommand)
    /// Hand a command to the hub log; its answer comes back as ``HubAnswer``.
    case submit(HubCommand)
    /// Issue a code for the address (report the ticket with
    /// ``SessionStateMachine/codeIssued(ticket:)``) and mail it (report with
    /// ``SessionStateMachine/codeMailed(success:)``).
    case mailCode(EmailAddress)
    /// Check the guess against the address's pending code; report with
    /// ``SessionStateMachine/codeChecked(_:)``.
    case verifyCode(Substring, EmailAddress)
    /// Forget the code issued under this ticket (the connection that asked is gone).
    case revokeCode(EmailAddress, ticket: UInt64)
    /// Start the time allowed to log in; report its end with
    /// ``SessionStateMachine/loginTimedOut()``.
    case startLoginTimer
    /// The user is logged in: the login deadline no longer applies (its scheduled task and
    /// what it holds are let go now, not when it would have fired).
    case stopLoginTimer
    /// Write a line to the server log, with the connection's metadata.
    case log(Logger.Level, String, Logger.Metadata = [:])
    /// Count this in the server's metrics.
    case count(SessionEvent)

}
