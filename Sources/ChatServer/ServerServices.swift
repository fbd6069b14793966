import ChatHub
import ChatMail
import Logging
import NIOConcurrencyHelpers

/// What every connection handler shares: created once per server, and held by reference
/// so that an idle connection does not carry its own copy of the configuration.
final class ServerServices: Sendable {
    let configuration: ServerConfiguration
    let log: any NodeLog
    let otp: OTPService
    let mailer: any Mailer
    let metrics: ChatMetrics
    let logger: Logger
    let clock: ServerClock
    /// The settings every session decides by, shared by all of them.
    let sessionPolicy: SessionStateMachine.Policy
    /// Connections accepted and not yet closed, on every listener (what a shutdown drains).
    let openConnections = NIOLockedValueBox(0)

    init(
        configuration: ServerConfiguration, log: any NodeLog, otp: OTPService, mailer: any Mailer, metrics: ChatMetrics,
        logger: Logger, clock: ServerClock = .system
    ) {
        self.configuration = configuration
        self.log = log
        self.otp = otp
        self.mailer = mailer
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
        self.sessionPolicy = SessionStateMachine.Policy(
            usernameRules: configuration.usernameRules, maxEmailAttempts: configuration.limits.maxEmailAttempts,
            adminEmails: configuration.adminEmails)
    }
}
