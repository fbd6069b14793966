import Foundation

/// Composes the RFC 5322 / MIME message for an OTP mail: `multipart/alternative` with a
/// plain-text and an HTML part, both carrying the code and its expiry.
///
/// Header values come from validated input (addresses without spaces or control
/// characters, a configured sender checked for CR/LF), so nothing here can inject a header.
public struct MailMessage: Sendable {
    public var from: String
    public var subject: String
    public var date: Date
    public var messageID: String
    public var boundary: String
    public var mail: OTPMail

    public static let defaultSubject = "Your TCP Chat verification code"

    public init(
        mail: OTPMail,
        from: String = "TCP Chat <noreply@localhost>",
        subject: String = MailMessage.defaultSubject,
        date: Date = Date()
    ) {
        let unique = UUID().uuidString.lowercased()
        self.mail = mail
        self.from = from
        self.subject = subject
        self.date = date
        self.messageID = "<\(unique)@\(Self.domain(of: from))>"
        self.boundary = "=_tcp-chat_\(unique.replacingOccurrences(of: "-", with: ""))"
    }

    private var validity: String {
        mail.validForMinutes == 1 ? "1 minute" : "\(mail.validForMinutes) minutes"
    }

    /// The plain-text body.
    public var textBody: String {
        """
        Your TCP Chat verification code is: \(mail.code)

        It expires in \(validity) and can be used once.
        If you did not ask for this code, you can ignore this mail.
        """
    }

    /// The HTML body.
    public var htmlBody: String {
        """
        <!DOCTYPE html>
        <html><body style="font-family: sans-serif">
        <p>Your TCP Chat verification code is:</p>
        <p style="font-size: 28px; font-weight: bold; letter-spacing: 4px">\(mail.code)</p>
        <p>It expires in \(validity) and can be used once.<br>
        If you did not ask for this code, you can ignore this mail.</p>
        </body></html>
        """
    }

    /// The whole message, headers and body, with CRLF line endings and no line over 998
    /// characters.
    public var rendered: String {
        let lines = [
            "From: \(from)",
            "To: \(mail.recipient)",
            "Subject: \(subject)",
            "Date: \(Self.rfc5322Date(date))",
            "Message-ID: \(messageID)",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
            "",
            "This is a multi-part message in MIME format.",
            "",
            "--\(boundary)",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 7bit",
            "",
            textBody,
            "",
            "--\(boundary)",
            "Content-Type: text/html; charset=utf-8",
            "Content-Transfer-Encoding: 7bit",
            "",
            htmlBody,
            "",
            "--\(boundary)--",
        ]
        return lines.joined(separator: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false)
            .joined(separator: "\r\n") + "\r\n"
    }

    /// The domain of the sender's address, for the Message-ID.
    static func domain(of address: String) -> String {
        guard let at = address.lastIndex(of: "@") else { return "tcp-chat" }
        let domain = address[address.index(after: at)...].prefix { $0 != ">" && $0 != " " }
        return domain.isEmpty ? "tcp-chat" : String(domain)
    }

    /// `Sun, 29 Nov 2026 02:19:46 +0000`. Built by hand: a `DateFormatter` per mail costs
    /// more than the rest of the mail together, and RFC 5322 wants English names anyway.
    static func rfc5322Date(_ date: Date) -> String {
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let parts = Calendar.gregorianUTC.dateComponents(
            [.weekday, .day, .month, .year, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String {
            let value = value ?? 0
            return value < 10 ? "0\(value)" : "\(value)"
        }
        return
            "\(days[(parts.weekday ?? 1) - 1]), \(two(parts.day)) \(months[(parts.month ?? 1) - 1]) \(parts.year ?? 1970) "
            + "\(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)) +0000"
    }
}

extension Calendar {
    /// The Gregorian calendar in UTC (a value type: safe to share).
    static let gregorianUTC: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        return calendar
    }()
}
