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
    case smtpFrom = "SMTP_FROM"
    case smtpSecurity = "SMTP_SECURITY"
    case smtpCAFile = "SMTP_CA_FILE"
    case smtpTimeoutSeconds = "SMTP_TIMEOUT_SECONDS"
    case smtpMaxConcurrency = "SMTP_MAX_CONCURRENCY"
    case smtpMaxQueued = "SMTP_MAX_QUEUED"
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
    case maxConnections = "MAX_CONNECTIONS"
    case connectionsPerIPPerMinute = "CONNECTIONS_PER_IP_PER_MINUTE"
    case loginTimeoutSeconds = "LOGIN_TIMEOUT_SECONDS"
    case maxEmailAttempts = "MAX_EMAIL_ATTEMPTS"
    case otpRequestIntervalSeconds = "OTP_REQUEST_INTERVAL_SECONDS"
    case otpRequestsPerHour = "OTP_REQUESTS_PER_HOUR"
    case otpRequestsPerIPPerHour = "OTP_REQUESTS_PER_IP_PER_HOUR"
    case otpRequestsPerMinute = "OTP_REQUESTS_PER_MINUTE"
    case messageBurst = "MESSAGE_BURST"
    case messagesPerSecond = "MESSAGES_PER_SECOND"
    case maxQueuedLines = "MAX_QUEUED_LINES"
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
        case .smtpFrom: return ""
        case .smtpSecurity: return ""
        case .smtpCAFile: return ""
        case .smtpTimeoutSeconds: return "15"
        case .smtpMaxConcurrency: return "4"
        case .smtpMaxQueued: return "100"
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
        case .maxConnections: return "10000"
        case .connectionsPerIPPerMinute: return "30"
        case .loginTimeoutSeconds: return "120"
        case .maxEmailAttempts: return "5"
        case .otpRequestIntervalSeconds: return "30"
        case .otpRequestsPerHour: return "5"
        case .otpRequestsPerIPPerHour: return "20"
        case .otpRequestsPerMinute: return "120"
        case .messageBurst: return "20"
        case .messagesPerSecond: return "5"
        case .maxQueuedLines: return "1000"
        case .adminEmails: return ""
        }
    }

    /// One line on what the setting does.
    public var summary: String {
        switch self {
        case .bindAddress: return "address to listen on"
        case .tcpPort: return "TCP port for plain connections (0 picks a free port)"
        case .mailTransport:
            return "how OTP mails are delivered: smtp, file (.eml files in MAIL_DIR) or log (development: "
                + "codes go to the log); default: smtp when SMTP_HOST is set, else log"
        case .mailDir: return "folder for the file transport's .eml files"
        case .mailFrom: return "sender of OTP mails for the log and file transports"
        case .smtpHost: return "SMTP server host; setting it selects the SMTP transport"
        case .smtpPort: return "SMTP server port"
        case .smtpEmail: return "SMTP login; also the sender address unless SMTP_FROM names one"
        case .smtpPassword: return "SMTP password (environment or .env only; never printed); empty: no AUTH"
        case .smtpFrom: return "From: header of OTP mails, e.g. 'Chat <noreply@example.com>' (default: SMTP_EMAIL)"
        case .smtpSecurity:
            return
                "starttls, tls (implicit TLS) or none (loopback hosts only); default: tls for port 465, else starttls"
        case .smtpCAFile: return "PEM file of extra trusted CA certificates (a private relay's CA)"
        case .smtpTimeoutSeconds: return "seconds allowed to connect and for each SMTP reply (the whole session: 4x)"
        case .smtpMaxConcurrency: return "SMTP sessions at once"
        case .smtpMaxQueued: return "OTP mails waiting for an SMTP session before new ones fail at once"
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
        case .maxConnections: return "connections the server holds at once; more are told the server is full"
        case .connectionsPerIPPerMinute: return "new connections one client IP (IPv6: one /64) may open per minute"
        case .loginTimeoutSeconds: return "seconds a connection has to finish logging in"
        case .maxEmailAttempts: return "invalid e-mail addresses a connection may enter before it is closed"
        case .otpRequestIntervalSeconds:
            return "seconds between two codes for the same e-mail address (used codes do not count)"
        case .otpRequestsPerHour: return "unused codes per e-mail address per hour"
        case .otpRequestsPerIPPerHour: return "codes requested from one client IP (IPv6: one /64) per hour"
        case .otpRequestsPerMinute: return "codes the whole server mails per minute"
        case .messageBurst: return "lines a user may send at once before flood control slows them"
        case .messagesPerSecond: return "lines per second a user may send in the long run"
        case .maxQueuedLines:
            return "lines flood control may hold back in one unbroken flood before the client is disconnected"
        case .adminEmails: return "comma-separated e-mail addresses whose users are server operators"
        }
    }

    /// Whether the value must never be printed or logged.
    public var isSecret: Bool { self == .smtpPassword }
}
