import Foundation

/// Composes the RFC 5322 message for an OTP mail.
public struct MailMessage: Sendable {
    public var from: String
    public var subject: String
    public var date: Date
    public var messageID: String
    public var mail: OTPMail

    public static let defaultSubject = "Your TCP Chat verification code"

    public init(
        mail: OTPMail,
        from: String = "TCP Chat <noreply@localhost>",
        subject: String = MailMessage.defaultSubject,
        date: Date = Date(),
        messageID: String = "<\(UUID().uuidString.lowercased())@tcp-chat>"
    ) {
        self.mail = mail
        self.from = from
        self.subject = subject
        self.date = date
        self.messageID = messageID
    }

    /// The plain-text body.
    public var textBody: String {
        let minutes = mail.validForMinutes == 1 ? "1 minute" : "\(mail.validForMinutes) minutes"
        return """
            Your TCP Chat verification code is: \(mail.code)

            It expires in \(minutes) and can be used once.
            If you did not ask for this code, you can ignore this mail.
            """
    }

    /// The whole message, headers and body, with CRLF line endings.
    public var rendered: String {
        let headers = [
            "From: \(from)",
            "To: \(mail.recipient)",
            "Subject: \(subject)",
            "Date: \(Self.rfc5322Date(date))",
            "Message-ID: \(messageID)",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 7bit",
        ]
        let body = textBody.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n")
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + body + "\r\n"
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 0)
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }
}
