/// The mail that carries a one-time code.
public struct OTPMail: Sendable, Equatable {
    /// The recipient's address, already validated (no spaces, no control characters).
    public var recipient: String
    /// The 6-digit code.
    public var code: String
    /// How long the code stays valid, stated in the mail.
    public var validForMinutes: Int

    public init(recipient: String, code: String, validForMinutes: Int) {
        self.recipient = recipient
        self.code = code
        self.validForMinutes = validForMinutes
    }
}

/// Delivers OTP mails. Implementations must not block the caller's thread for long and
/// must never log the code, except the development transport, which exists to show it.
public protocol Mailer: Sendable {
    /// A short name for logs and start-up messages (`log`, `file`, `smtp`).
    var name: String { get }

    /// Sends `mail`; throws when it could not be handed over for delivery.
    func send(_ mail: OTPMail) async throws
}
