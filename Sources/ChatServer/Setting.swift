/// Every setting the server reads, with its name, default and meaning.
///
/// The one catalogue behind `.env` files, environment variables, command-line flags,
/// `chat-server --help` and the README's table.
public enum Setting: String, CaseIterable, Sendable {
    case bindAddress = "BIND_ADDRESS"
    case tcpPort = "TCP_PORT"
    case mailTransport = "MAIL_TRANSPORT"
    case mailDir = "MAIL_DIR"
    case mailFrom = "MAIL_FROM"
    case smtpHost = "SMTP_HOST"
    case smtpPort = "SMTP_PORT"
    case smtpEmail = "SMTP_EMAIL"
    case smtpPassword = "SMTP_PASSWORD"
    case otpExpirationMinutes = "OTP_EXPIRATION_MINUTES"
    case otpMaxRetries = "OTP_MAX_RETRIES"
    case usernameMinLength = "USERNAME_MIN_LENGTH"
    case usernameMaxLength = "USERNAME_MAX_LENGTH"
    case maxConnectionsPerIP = "MAX_CONNECTIONS_PER_IP"
    case maxLineBytes = "MAX_LINE_BYTES"
    case maxSendQueueBytes = "MAX_SENDQ_BYTES"
    case historySize = "HISTORY_SIZE"
    case eventLoopThreads = "EVENT_LOOP_THREADS"
    case shutdownTimeoutSeconds = "SHUTDOWN_TIMEOUT_SECONDS"
    case logLevel = "LOG_LEVEL"
    case adminEmails = "ADMIN_EMAILS"

    /// The environment variable's name.
    public var name: String { rawValue }

    /// The default, as written in a `.env` file; empty when there is none.
    public var defaultValue: String {
        switch self {
        case .bindAddress: return "0.0.0.0"
        case .tcpPort: return "8888"
        case .mailTransport: return ""
        case .mailDir: return "./mail"
        case .mailFrom: return "TCP Chat <noreply@localhost>"
        case .smtpHost: return ""
        case .smtpPort: return "587"
        case .smtpEmail: return ""
        case .smtpPassword: return ""
        case .otpExpirationMinutes: return "5"
        case .otpMaxRetries: return "3"
        case .usernameMinLength: return "3"
        case .usernameMaxLength: return "16"
        case .maxConnectionsPerIP: return "1"
        case .maxLineBytes: return "4096"
        case .maxSendQueueBytes: return "262144"
        case .historySize: return "100"
        case .eventLoopThreads: return "0"
        case .shutdownTimeoutSeconds: return "5"
        case .logLevel: return "info"
        case .adminEmails: return ""
        }
    }

    /// One line on what the setting does.
    public var summary: String {
        switch self {
        case .bindAddress: return "address to listen on"
        case .tcpPort: return "TCP port for plain connections (0 picks a free port)"
        case .mailTransport:
            return "how OTP mails are delivered: log (development: codes go to the log) or file; "
                + "default: log"
        case .mailDir: return "folder for the file transport's .eml files"
        case .mailFrom: return "sender of OTP mails"
        case .smtpHost: return "SMTP server host (the SMTP transport is not in this version)"
        case .smtpPort: return "SMTP server port"
        case .smtpEmail: return "SMTP login"
        case .smtpPassword: return "SMTP password (environment or .env only; never printed)"
        case .otpExpirationMinutes: return "minutes an OTP code stays valid"
        case .otpMaxRetries: return "wrong codes allowed before the code is void and the connection closed"
        case .usernameMinLength: return "shortest username"
        case .usernameMaxLength: return "longest username"
        case .maxConnectionsPerIP: return "connections allowed at once from one client IP"
        case .maxLineBytes: return "longest input line in bytes; longer lines are discarded with an error"
        case .maxSendQueueBytes: return "bytes queued for a client that does not read before it is disconnected"
        case .historySize: return "lines of recent history kept per room (replayed on join, 5-minute window)"
        case .eventLoopThreads: return "network threads, at most 64 (0: one per CPU core)"
        case .shutdownTimeoutSeconds: return "seconds to flush and close connections on shutdown"
        case .logLevel: return "trace, debug, info, notice, warning, error or critical"
        case .adminEmails: return "comma-separated e-mail addresses whose users are server operators"
        }
    }

    /// Whether the value must never be printed or logged.
    public var isSecret: Bool { self == .smtpPassword }
}
