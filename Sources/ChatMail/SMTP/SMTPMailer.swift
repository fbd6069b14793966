import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Delivers OTP mails through an SMTP server (Gmail, SendGrid, Mailgun, SES, Postfix, a
/// local relay), on SwiftNIO with swift-nio-ssl.
///
/// At most `maxConcurrency` sessions run at once and at most `maxQueued` mails wait for
/// one; beyond that a mail fails at once, so a slow or dead server delays only the users
/// waiting for their own code. Certificates are verified, host name included; with
/// `starttls` there is no silent downgrade.
public struct SMTPMailer: Mailer {
    public let name = "smtp"
    public let settings: SMTPSettings
    private let tlsContext: NIOSSLContext
    private let group: any EventLoopGroup
    private let limiter: ConcurrencyLimiter

    /// - Throws: when the TLS configuration (e.g. `caFile`) cannot be loaded.
    public init(settings: SMTPSettings, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.settings = settings
        self.group = group
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        if let caFile = settings.caFile {
            tls.additionalTrustRoots = [.file(caFile)]
        }
        self.tlsContext = try NIOSSLContext(configuration: tls)
        self.limiter = ConcurrencyLimiter(limit: settings.maxConcurrency, maxWaiting: settings.maxQueued)
    }

    public func send(_ mail: OTPMail) async throws {
        let message = MailMessage(mail: mail, from: settings.fromHeader)
        let envelope = SMTPSession.Envelope(
            sender: settings.envelopeSender,
            recipient: mail.recipient,
            data: message.rendered
        )
        guard !envelope.sender.contains(where: { $0 == "<" || $0 == ">" || $0.isWhitespace }),
            !envelope.recipient.contains(where: { $0 == "<" || $0 == ">" || $0.isWhitespace })
        else { throw SMTPError.invalidAddress(envelope.recipient) }
        let session = makeSession()
        let sent: Void? = try await limiter.run { try await session.run(sending: envelope) }
        guard sent != nil else { throw SMTPError.queueFull }
    }

    /// Connects, negotiates TLS and authenticates without sending mail: a set-up check.
    public func check() async throws {
        try await makeSession().run(sending: nil)
    }

    func makeSession() -> SMTPSession {
        SMTPSession(settings: settings, tlsContext: tlsContext, group: group)
    }
}
