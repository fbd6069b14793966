/// Why an SMTP delivery failed. Descriptions go to the server log; they never contain
/// the password or the code, and users only ever see a generic error.
public enum SMTPError: Error, CustomStringConvertible, Equatable {
    case connectionFailed(String)
    case timedOut(stage: String)
    case connectionClosed(stage: String)
    case unexpectedReply(stage: String, code: Int, text: String)
    case startTLSNotOffered
    case tlsFailed(String)
    case authenticationNotOffered
    case authenticationRejected(code: Int, text: String)
    case plainTextRefused
    case queueFull
    case invalidAddress(String)

    public var description: String {
        switch self {
        case .connectionFailed(let reason):
            return "could not connect to the SMTP server: \(reason)"
        case .timedOut(let stage):
            return "SMTP server did not answer in time (\(stage))"
        case .connectionClosed(let stage):
            return "SMTP server closed the connection (\(stage))"
        case .unexpectedReply(let stage, let code, let text):
            return "SMTP server answered \(code) to \(stage): \(text)"
        case .startTLSNotOffered:
            return "SMTP server does not offer STARTTLS, which SMTP_SECURITY=starttls requires"
        case .tlsFailed(let reason):
            return "TLS with the SMTP server failed: \(reason)"
        case .authenticationNotOffered:
            return "SMTP server offers neither AUTH PLAIN nor AUTH LOGIN"
        case .authenticationRejected(let code, let text):
            return "SMTP server rejected the login (\(code)): \(text)"
        case .plainTextRefused:
            return "refusing to send the SMTP password over an unencrypted connection to a non-loopback host"
        case .queueFull:
            return "too many OTP mails waiting for an SMTP session"
        case .invalidAddress(let address):
            return "address not usable in SMTP: \(address)"
        }
    }
}
