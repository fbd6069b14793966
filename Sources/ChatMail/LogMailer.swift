import Logging

/// The development transport: writes each OTP mail, code included, to the server log.
///
/// With it nobody's address is really verified; the server says so loudly at start-up.
public struct LogMailer: Mailer {
    public let name = "log"
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func send(_ mail: OTPMail) async throws {
        // Showing the code is this transport's whole purpose (development only).
        logger.notice(
            "OTP mail (development transport, not sent)",
            metadata: [
                "to": "\(mail.recipient)",
                "code": "\(mail.code)",
                "valid_minutes": "\(mail.validForMinutes)",
            ]
        )
    }
}
