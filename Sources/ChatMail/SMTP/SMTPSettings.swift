/// How to reach and use an SMTP server.
public struct SMTPSettings: Sendable, Equatable {
    public enum Security: String, Sendable, CaseIterable {
        /// Plain connection upgraded with STARTTLS, which must be offered (port 587).
        case starttls
        /// TLS from the first byte ("SMTPS", port 465).
        case tls
        /// No encryption at all; only allowed to a loopback host.
        case none
    }

    public var host: String
    public var port: Int
    public var security: Security
    /// Login name (`SMTP_EMAIL`); with an empty password no AUTH is attempted.
    public var username: String
    public var password: String
    /// The envelope sender (`MAIL FROM`).
    public var envelopeSender: String
    /// The `From:` header, e.g. `Chat <noreply@example.com>`.
    public var fromHeader: String
    /// An extra PEM file of trusted CA certificates (a private relay's CA).
    public var caFile: String?
    /// Time allowed to connect, and for each reply.
    public var stepTimeout: Duration
    /// Time allowed for the whole conversation.
    public var totalTimeout: Duration
    /// SMTP sessions at once.
    public var maxConcurrency: Int
    /// Mails waiting for a session before new ones are refused.
    public var maxQueued: Int
    /// The name this client gives in EHLO.
    public var heloName: String

    public init(
        host: String,
        port: Int,
        security: Security,
        username: String = "",
        password: String = "",
        envelopeSender: String,
        fromHeader: String? = nil,
        caFile: String? = nil,
        stepTimeout: Duration = .seconds(15),
        totalTimeout: Duration? = nil,
        maxConcurrency: Int = 4,
        maxQueued: Int = 100,
        heloName: String = "localhost"
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.envelopeSender = envelopeSender
        self.fromHeader = fromHeader ?? envelopeSender
        self.caFile = caFile
        self.stepTimeout = stepTimeout
        self.totalTimeout = totalTimeout ?? stepTimeout * 4
        self.maxConcurrency = maxConcurrency
        self.maxQueued = maxQueued
        self.heloName = heloName
    }

    /// The security a port implies when none is configured: implicit TLS on 465,
    /// STARTTLS elsewhere.
    public static func defaultSecurity(forPort port: Int) -> Security {
        port == 465 ? .tls : .starttls
    }

    /// Whether the host is this machine, where plain connections and plain-text AUTH are
    /// acceptable (nothing crosses a network).
    public var isLoopbackHost: Bool {
        let host = host.lowercased()
        return host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// Whether the password is sent at all.
    var authenticates: Bool { !username.isEmpty && !password.isEmpty }
}

extension SMTPSettings: CustomStringConvertible {
    /// For logs: never the password.
    public var description: String {
        "smtp://\(host):\(port) security=\(security.rawValue) user=\(username.isEmpty ? "-" : username)"
    }
}
