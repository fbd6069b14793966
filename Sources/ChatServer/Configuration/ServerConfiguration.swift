import ChatCluster
import ChatCore
import ChatMail
import Configuration
import Foundation
import Logging
import RedisClient

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

    public var bindAddress: String
    /// The plain TCP listener's port; `nil` (`TCP_PORT=off`): TLS only.
    public var port: Int?
    /// The certificate and the TLS listener, when `TLS_PORT` or `WEB_TLS_PORT` is set.
    public var tls: TLSSettings?
    /// The web client's listeners, when `WEB_PORT` or `WEB_TLS_PORT` is set.
    public var web: WebSettings?
    public var mailTransport: MailTransport
    public var mailFrom: String
    /// How long a code stays valid (`OTP_EXPIRATION_MINUTES`; finer in tests).
    public var otpExpiration: Duration
    public var otpMaxRetries: Int
    public var usernameRules: UsernameRules
    public var maxConnectionsPerIP: Int
    public var maxLineBytes: Int
    public var maxSendQueueBytes: Int
    public var historySize: Int
    /// Rooms with more members than this do not announce joins and leaves.
    public var presenceNoticeMaxMembers: Int
    /// `ROOM_KEEP_EMPTY_DAYS`, `ROOMS_MAX`, `ROOMS_PER_OWNER`.
    public var roomKeepEmptyDays: Int
    public var roomsMax: Int
    public var roomsPerOwner: Int
    /// `RESUME_TOKEN_DAYS`: how long a resume token stays valid.
    public var resumeTokenDays: Int
    public var eventLoopThreads: Int
    public var shutdownTimeout: Duration
    public var logLevel: Logger.Level
    /// Lower-cased e-mail addresses whose users are server operators.
    public var adminEmails: Set<String> = []
    /// What protects the server from abuse.
    public var limits: AbuseLimits
    /// `PROXY_PROTOCOL=on`: who may send PROXY protocol headers, and how long they have.
    public var proxyProtocol: ProxyProtocolSettings?
    /// `METRICS_PORT`: where `/metrics` and `/health` are served, when they are.
    public var metrics: MetricsSettings?
    /// `CLUSTER_REDIS_URL`: this server is one node of a cluster sharing its hub through Redis.
    public var cluster: ClusterSettings?
    /// `DATA_DIR`: a node on its own that journals its state; `nil`: memory only.
    public var journal: JournalSettings?
    /// How often the server checks whether connection churn left memory to give back
    /// (see `MemoryReclaimer`). Not a setting: tests shorten it.
    public var memoryReclaimPeriod: Duration = .seconds(10)

    /// Every setting at its default (``Setting/defaultValue``, the one place defaults live).
    public init() {
        do {
            try self.init(reader: ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: [:])))
        } catch {
            // The catalogue's defaults are valid; `ConfigurationTests.defaults` checks it.
            preconditionFailure("a default setting is invalid: \(error)")
        }
    }

    /// The expiry as the OTP mail states it, in whole minutes (rounded up).
    public var otpExpirationMinutes: Int {
        let seconds = otpExpiration.components.seconds
        return max(1, Int((seconds + 59) / 60))
    }

    /// Reads and validates every setting.
    /// - Throws: ``ConfigurationError`` naming the first setting that is wrong.
    public init(reader: ConfigReader) throws(ConfigurationError) {
        let values = SettingValues(reader: reader)
        // Every whole-number setting is checked, also those of a transport not in use: a
        // mistake is reported now, not when the setting starts to matter.
        for setting in Setting.allCases where setting.range != nil {
            _ = try values.integerOrOff(setting)
        }
        bindAddress = try values.string(.bindAddress)
        port = try values.integerOrOff(.tcpPort)
        let webTLSPort = try values.integerOrOff(.webTLSPort)
        tls = try Self.tls(values, webTLSPort: webTLSPort)
        web = try Self.web(values, tlsPort: webTLSPort)
        guard port != nil || tls?.port != nil || web != nil else {
            throw ConfigurationError(
                .tcpPort, "is off and neither TLS_PORT nor WEB_PORT is set: the server would have no listener")
        }
        otpExpiration = .seconds(60 * (try values.integer(.otpExpirationMinutes)))
        otpMaxRetries = try values.integer(.otpMaxRetries)
        let minLength = try values.integer(.usernameMinLength)
        let maxLength = try values.integer(.usernameMaxLength)
        guard minLength <= maxLength else {
            throw ConfigurationError(.usernameMaxLength, "must not be less than USERNAME_MIN_LENGTH (\(minLength))")
        }
        usernameRules = UsernameRules(minimumLength: minLength, maximumLength: maxLength)
        maxConnectionsPerIP = try values.integer(.maxConnectionsPerIP)
        maxLineBytes = try values.integer(.maxLineBytes)
        maxSendQueueBytes = try values.integer(.maxSendQueueBytes)
        historySize = try values.integer(.historySize)
        presenceNoticeMaxMembers = try values.integer(.presenceNoticeMaxMembers)
        roomKeepEmptyDays = try values.integer(.roomKeepEmptyDays)
        roomsMax = try values.integer(.roomsMax)
        roomsPerOwner = try values.integer(.roomsPerOwner)
        resumeTokenDays = try values.integer(.resumeTokenDays)
        eventLoopThreads = try values.integer(.eventLoopThreads)
        shutdownTimeout = .seconds(try values.integer(.shutdownTimeoutSeconds))
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
            maxConnections: try values.integer(.maxConnections),
            connectionsPerIPPerMinute: try values.integer(.connectionsPerIPPerMinute),
            nickChangesPerMinute: try values.integer(.nickChangesPerMinute),
            loginTimeout: .seconds(try values.integer(.loginTimeoutSeconds)),
            maxEmailAttempts: try values.integer(.maxEmailAttempts),
            otpRequestInterval: .seconds(try values.integer(.otpRequestIntervalSeconds)),
            otpRequestsPerHour: try values.integer(.otpRequestsPerHour),
            otpRequestsPerIPPerHour: try values.integer(.otpRequestsPerIPPerHour),
            otpRequestsPerMinute: try values.integer(.otpRequestsPerMinute),
            messageBurst: try values.integer(.messageBurst),
            messagesPerSecond: Double(try values.integer(.messagesPerSecond)),
            maxQueuedLines: try values.integer(.maxQueuedLines)
        )
        proxyProtocol = try Self.proxyProtocol(values)
        if let port = try values.integerOrOff(.metricsPort) {
            metrics = MetricsSettings(host: try values.string(.metricsBindAddress), port: port)
        }
        cluster = try Self.cluster(values)
        journal = try Self.journal(values, cluster: cluster)
        for entry in try values.string(.adminEmails).split(separator: ",") {
            let trimmed = entry.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            guard let email = EmailAddress(trimmed) else {
                throw ConfigurationError(.adminEmails, "'\(trimmed)' is not a valid e-mail address")
            }
            adminEmails.insert(email.key)
        }
    }

    private static func journal(
        _ values: SettingValues, cluster: ClusterSettings?
    ) throws(ConfigurationError) -> JournalSettings? {
        let fsyncText = try values.string(.dataFsync)
        guard let fsync = JournalSettings.Fsync(rawValue: fsyncText.lowercased()) else {
            throw ConfigurationError(.dataFsync, "must be always or interval")
        }
        let directory = try values.string(.dataDirectory)
        guard !directory.isEmpty else { return nil }
        guard cluster == nil else {
            throw ConfigurationError(.dataDirectory, "is for a node on its own; a cluster keeps its state in Redis")
        }
        let recovery = try values.string(.dataRecovery).lowercased()
        guard recovery == "off" || recovery == "salvage" else {
            throw ConfigurationError(.dataRecovery, "must be off or salvage")
        }
        return JournalSettings(
            directory: directory, fsync: fsync, snapshotInterval: .seconds(try values.integer(.dataSnapshotSeconds)),
            snapshotEntries: try values.integer(.dataSnapshotEntries), salvage: recovery == "salvage")
    }

    private static func tls(
        _ values: SettingValues, webTLSPort: Int?
    ) throws(ConfigurationError) -> TLSSettings? {
        let timeout = try values.integer(.tlsHandshakeTimeoutSeconds)
        let port = try values.integerOrOff(.tlsPort)
        guard port != nil || webTLSPort != nil else { return nil }
        var files: [String] = []
        for setting in [Setting.tlsCertFile, .tlsKeyFile] {
            let path = try values.string(setting)
            guard !path.isEmpty else {
                throw ConfigurationError(setting, "must name a PEM file when TLS_PORT or WEB_TLS_PORT is set")
            }
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ConfigurationError(setting, "cannot read '\(path)'")
            }
            files.append(path)
        }
        return TLSSettings(
            port: port, certificateFile: files[0], keyFile: files[1], handshakeTimeout: .seconds(timeout))
    }

    private static func proxyProtocol(_ values: SettingValues) throws(ConfigurationError) -> ProxyProtocolSettings? {
        let timeout = try values.integer(.proxyHeaderTimeoutSeconds)
        let trustedText = try values.string(.trustedProxies)
        guard let trusted = IPNetwork.list(trustedText) else {
            throw ConfigurationError(
                .trustedProxies, "must be a comma-separated list of address blocks such as 10.0.0.0/8")
        }
        switch try values.string(.proxyProtocol).lowercased() {
        case "off": return nil
        case "on":
            guard !trusted.isEmpty else {
                throw ConfigurationError(.trustedProxies, "must name at least one proxy when PROXY_PROTOCOL=on")
            }
            return ProxyProtocolSettings(trustedProxies: trusted, headerTimeout: .seconds(timeout))
        case let other:
            throw ConfigurationError(.proxyProtocol, "must be on or off, not '\(other)'")
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
        let port = try values.integer(.smtpPort)
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
            stepTimeout: .seconds(try values.integer(.smtpTimeoutSeconds)),
            maxConcurrency: try values.integer(.smtpMaxConcurrency),
            maxQueued: try values.integer(.smtpMaxQueued)
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

/// The server's certificate: the PEM files of its chain and key, the time a client has to
/// finish its handshake, and the TLS listener's port when there is one (the web listener's
/// HTTPS port, `WEB_TLS_PORT`, uses the same certificate).
public struct TLSSettings: Sendable, Equatable {
    /// `TLS_PORT`; `nil`: the certificate serves only `WEB_TLS_PORT`.
    public var port: Int?
    public var certificateFile: String
    public var keyFile: String
    public var handshakeTimeout: Duration

    public init(port: Int?, certificateFile: String, keyFile: String, handshakeTimeout: Duration = .seconds(10)) {
        self.port = port
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.handshakeTimeout = handshakeTimeout
    }
}

/// Connections come through a load balancer that sends a PROXY protocol header first.
public struct ProxyProtocolSettings: Sendable, Equatable {
    /// The only peers whose headers are believed.
    public var trustedProxies: [IPNetwork]
    /// How long a connection has to send its header.
    public var headerTimeout: Duration

    public init(trustedProxies: [IPNetwork], headerTimeout: Duration) {
        self.trustedProxies = trustedProxies
        self.headerTimeout = headerTimeout
    }
}

/// Where the metrics and health endpoint listens.
public struct MetricsSettings: Sendable, Equatable {
    public var host: String
    /// 0 picks a free port.
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int) {
        self.host = host
        self.port = port
    }
}

/// The limits that keep one client from hurting the server or anyone else.
public struct AbuseLimits: Sendable, Equatable {
    public var maxConnections: Int
    public var connectionsPerIPPerMinute: Int
    /// `/nick` changes one account may make per minute.
    public var nickChangesPerMinute: Int
    public var loginTimeout: Duration
    public var maxEmailAttempts: Int
    public var otpRequestInterval: Duration
    public var otpRequestsPerHour: Int
    public var otpRequestsPerIPPerHour: Int
    public var otpRequestsPerMinute: Int
    public var messageBurst: Int
    public var messagesPerSecond: Double
    public var maxQueuedLines: Int

    /// The defaults (the settings catalogue's).
    public static var defaults: AbuseLimits { ServerConfiguration().limits }

    public init(
        maxConnections: Int, connectionsPerIPPerMinute: Int, nickChangesPerMinute: Int = 5, loginTimeout: Duration,
        maxEmailAttempts: Int,
        otpRequestInterval: Duration, otpRequestsPerHour: Int, otpRequestsPerIPPerHour: Int,
        otpRequestsPerMinute: Int, messageBurst: Int, messagesPerSecond: Double, maxQueuedLines: Int
    ) {
        self.maxConnections = maxConnections
        self.connectionsPerIPPerMinute = connectionsPerIPPerMinute
        self.nickChangesPerMinute = nickChangesPerMinute
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
