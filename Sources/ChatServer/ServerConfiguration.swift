import ChatCore
import ChatMail
import Configuration
import Foundation
import Logging

/// Everything the server needs to know to run, validated.
public struct ServerConfiguration: Sendable {
    public enum MailTransport: Sendable, Equatable {
        /// Development: each OTP mail goes to the server log.
        case log
        /// Each OTP mail becomes an `.eml` file in the folder.
        case file(directory: String)
        /// Real mail through an SMTP server.
        case smtp(SMTPSettings)
    }

    public var bindAddress = "0.0.0.0"
    public var port = 8888
    public var mailTransport = MailTransport.log
    public var mailFrom = "TCP Chat <noreply@localhost>"
    /// How long a code stays valid (`OTP_EXPIRATION_MINUTES`; finer in tests).
    public var otpExpiration: Duration = .seconds(300)
    public var otpMaxRetries = 3
    public var usernameRules = UsernameRules()
    public var maxConnectionsPerIP = 1
    public var maxLineBytes = 4096
    public var maxSendQueueBytes = 262_144
    public var historySize = 100
    public var eventLoopThreads = 0
    public var shutdownTimeout: Duration = .seconds(5)
    public var logLevel = Logger.Level.info
    /// Lower-cased e-mail addresses whose users are server operators.
    public var adminEmails: Set<String> = []
    /// What protects the server from abuse.
    public var limits = AbuseLimits()
    /// How often the server checks whether connection churn left memory to give back
    /// (see `MemoryReclaimer`). Not a setting: tests shorten it.
    public var memoryReclaimPeriod: Duration = .seconds(10)

    /// The longest chat message, in characters (fixed by the protocol).
    public static let maximumMessageLength = 1024

    public init() {}

    /// The expiry as the OTP mail states it, in whole minutes (rounded up).
    public var otpExpirationMinutes: Int {
        let seconds = otpExpiration.components.seconds
        return max(1, Int((seconds + 59) / 60))
    }

    /// Reads and validates every setting.
    /// - Throws: ``ConfigurationError`` naming the first setting that is wrong.
    public init(reader: ConfigReader) throws(ConfigurationError) {
        let values = SettingValues(reader: reader)
        bindAddress = try values.string(.bindAddress)
        port = try values.integer(.tcpPort, in: 0...65535)
        otpExpiration = .seconds(60 * (try values.integer(.otpExpirationMinutes, in: 1...1440)))
        otpMaxRetries = try values.integer(.otpMaxRetries, in: 1...100)
        let minLength = try values.integer(.usernameMinLength, in: 1...64)
        let maxLength = try values.integer(.usernameMaxLength, in: 1...64)
        guard minLength <= maxLength else {
            throw ConfigurationError(.usernameMaxLength, "must not be less than USERNAME_MIN_LENGTH (\(minLength))")
        }
        usernameRules = UsernameRules(minimumLength: minLength, maximumLength: maxLength)
        maxConnectionsPerIP = try values.integer(.maxConnectionsPerIP, in: 1...1_000_000)
        maxLineBytes = try values.integer(.maxLineBytes, in: 1100...1_048_576)
        maxSendQueueBytes = try values.integer(.maxSendQueueBytes, in: 8192...1_073_741_824)
        historySize = try values.integer(.historySize, in: 0...10_000)
        eventLoopThreads = try values.integer(.eventLoopThreads, in: 0...64)
        shutdownTimeout = .seconds(try values.integer(.shutdownTimeoutSeconds, in: 1...3600))
        guard let level = Logger.Level(rawValue: try values.string(.logLevel).lowercased()) else {
            throw ConfigurationError(.logLevel, "must be one of trace, debug, info, notice, warning, error, critical")
        }
        logLevel = level
        mailFrom = try values.string(.mailFrom)
        guard !mailFrom.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 0x20 } == true }) else {
            throw ConfigurationError(.mailFrom, "must not contain control characters")
        }
        mailTransport = try Self.mailTransport(values)
        limits = AbuseLimits(
            maxConnections: try values.integer(.maxConnections, in: 1...1_000_000),
            connectionsPerIPPerMinute: try values.integer(.connectionsPerIPPerMinute, in: 1...100_000),
            loginTimeout: .seconds(try values.integer(.loginTimeoutSeconds, in: 5...3600)),
            maxEmailAttempts: try values.integer(.maxEmailAttempts, in: 1...100),
            otpRequestInterval: .seconds(try values.integer(.otpRequestIntervalSeconds, in: 0...3600)),
            otpRequestsPerHour: try values.integer(.otpRequestsPerHour, in: 1...1000),
            otpRequestsPerIPPerHour: try values.integer(.otpRequestsPerIPPerHour, in: 1...100_000),
            otpRequestsPerMinute: try values.integer(.otpRequestsPerMinute, in: 1...1_000_000),
            messageBurst: try values.integer(.messageBurst, in: 1...10_000),
            messagesPerSecond: Double(try values.integer(.messagesPerSecond, in: 1...10_000)),
            maxQueuedLines: try values.integer(.maxQueuedLines, in: 10...1_000_000)
        )
        for entry in try values.string(.adminEmails).split(separator: ",") {
            let trimmed = entry.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            guard let email = EmailAddress(trimmed) else {
                throw ConfigurationError(.adminEmails, "'\(trimmed)' is not a valid e-mail address")
            }
            adminEmails.insert(email.key)
        }
    }

    private static func mailTransport(_ values: SettingValues) throws(ConfigurationError) -> MailTransport {
        let smtpHost = try values.string(.smtpHost)
        switch try values.string(.mailTransport).lowercased() {
        case "log":
            return .log
        case "file":
            let directory = try values.string(.mailDir)
            guard !directory.isEmpty else { throw ConfigurationError(.mailDir, "must name a folder") }
            return .file(directory: directory)
        case "smtp":
            guard !smtpHost.isEmpty else { throw ConfigurationError(.smtpHost, "must be set for MAIL_TRANSPORT=smtp") }
            return .smtp(try smtpSettings(values, host: smtpHost))
        case "":
            // The seed's .env (SMTP_HOST and credentials, no MAIL_TRANSPORT) keeps working.
            return smtpHost.isEmpty ? .log : .smtp(try smtpSettings(values, host: smtpHost))
        case let other:
            throw ConfigurationError(.mailTransport, "must be smtp, file or log, not '\(other)'")
        }
    }

    private static func smtpSettings(_ values: SettingValues, host: String) throws(ConfigurationError) -> SMTPSettings {
        guard !host.contains(where: { $0.isWhitespace || $0 == "/" }) else {
            throw ConfigurationError(.smtpHost, "must be a host name or address")
        }
        let port = try values.integer(.smtpPort, in: 1...65535)
        let security: SMTPSettings.Security
        let securityText = try values.string(.smtpSecurity).lowercased()
        if securityText.isEmpty {
            security = SMTPSettings.defaultSecurity(forPort: port)
        } else if let chosen = SMTPSettings.Security(rawValue: securityText) {
            security = chosen
        } else {
            throw ConfigurationError(.smtpSecurity, "must be starttls, tls or none, not '\(securityText)'")
        }
        // SMTP_EMAIL is the login (SendGrid's is literally "apikey"); the sender address
        // comes from SMTP_FROM when that names one, else SMTP_EMAIL must be an address.
        let login = try values.string(.smtpEmail)
        guard !login.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else {
            throw ConfigurationError(.smtpEmail, "must not contain spaces or control characters")
        }
        var from = try values.string(.smtpFrom)
        guard !from.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ConfigurationError(.smtpFrom, "must not contain control characters")
        }
        let sender: EmailAddress
        if !from.isEmpty {
            guard let address = EmailAddress(Self.address(in: from)) else {
                throw ConfigurationError(.smtpFrom, "must be an address such as 'Chat <noreply@example.com>'")
            }
            sender = address
        } else {
            guard let address = EmailAddress(login) else {
                throw ConfigurationError(
                    .smtpEmail, "must be an e-mail address (the sender), or set SMTP_FROM to the sender")
            }
            sender = address
            from = "TCP Chat <\(address.value)>"
        }
        let caFile = try values.string(.smtpCAFile)
        guard caFile.isEmpty || FileManager.default.isReadableFile(atPath: caFile) else {
            throw ConfigurationError(.smtpCAFile, "cannot read '\(caFile)'")
        }
        var settings = SMTPSettings(
            host: host,
            port: port,
            security: security,
            username: login,
            password: try values.string(.smtpPassword),
            envelopeSender: sender.value,
            fromHeader: from,
            caFile: caFile.isEmpty ? nil : caFile,
            stepTimeout: .seconds(try values.integer(.smtpTimeoutSeconds, in: 1...600)),
            maxConcurrency: try values.integer(.smtpMaxConcurrency, in: 1...256),
            maxQueued: try values.integer(.smtpMaxQueued, in: 0...100_000)
        )
        guard security != .none || settings.isLoopbackHost else {
            throw ConfigurationError(.smtpSecurity, "none is only allowed for a loopback SMTP host")
        }
        settings.heloName = "localhost"
        return settings
    }

    /// The address in `Name <address>`, or the whole text.
    private static func address(in from: String) -> String {
        guard let open = from.lastIndex(of: "<"), let close = from.lastIndex(of: ">"), open < close else {
            return from
        }
        return String(from[from.index(after: open)..<close])
    }
}

/// The limits that keep one client from hurting the server or anyone else.
public struct AbuseLimits: Sendable, Equatable {
    public var maxConnections = 10_000
    public var connectionsPerIPPerMinute = 30
    public var loginTimeout: Duration = .seconds(120)
    public var maxEmailAttempts = 5
    public var otpRequestInterval: Duration = .seconds(30)
    public var otpRequestsPerHour = 5
    public var otpRequestsPerIPPerHour = 20
    public var otpRequestsPerMinute = 120
    public var messageBurst = 20
    public var messagesPerSecond = 5.0
    public var maxQueuedLines = 1000

    public init() {}

    public init(
        maxConnections: Int, connectionsPerIPPerMinute: Int, loginTimeout: Duration, maxEmailAttempts: Int,
        otpRequestInterval: Duration, otpRequestsPerHour: Int, otpRequestsPerIPPerHour: Int,
        otpRequestsPerMinute: Int, messageBurst: Int, messagesPerSecond: Double, maxQueuedLines: Int
    ) {
        self.maxConnections = maxConnections
        self.connectionsPerIPPerMinute = connectionsPerIPPerMinute
        self.loginTimeout = loginTimeout
        self.maxEmailAttempts = maxEmailAttempts
        self.otpRequestInterval = otpRequestInterval
        self.otpRequestsPerHour = otpRequestsPerHour
        self.otpRequestsPerIPPerHour = otpRequestsPerIPPerHour
        self.otpRequestsPerMinute = otpRequestsPerMinute
        self.messageBurst = messageBurst
        self.messagesPerSecond = messagesPerSecond
        self.maxQueuedLines = maxQueuedLines
    }
}

/// A setting with a value the server cannot use. The message names the setting and never
/// contains a secret's value.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let setting: Setting
    public let problem: String

    public init(_ setting: Setting, _ problem: String) {
        self.setting = setting
        self.problem = problem
    }

    public var description: String { "Invalid setting \(setting.name): \(problem)" }
}

/// Reads settings as text from a `ConfigReader`, falling back to the catalogue defaults.
struct SettingValues {
    let reader: ConfigReader

    func string(_ setting: Setting) throws(ConfigurationError) -> String {
        let value = reader.string(forKey: ConfigKey(setting.name), isSecret: setting.isSecret)
        return (value ?? setting.defaultValue).trimmingSpaces
    }

    func integer(_ setting: Setting, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try string(setting)
        guard let value = Int(text) else {
            throw ConfigurationError(setting, "'\(text)' is not a whole number")
        }
        guard range.contains(value) else {
            throw ConfigurationError(setting, "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        guard let trimmed = InputLine.trimmed(self) else { return "" }
        return String(trimmed)
    }
}
