import ArgumentParser
import ChatMail
import ChatServer
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

@main
struct ChatServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-server",
        abstract: "A real-time TCP chat server with e-mail one-time-password login.",
        discussion: settingsHelp
    )

    @Option(help: "Read settings from this .env file (default: ./.env when it exists).")
    var envFile: String?

    @Flag(help: "Connect to the SMTP server, negotiate TLS and log in without sending mail; print a verdict and exit.")
    var checkSmtp = false

    @Option(help: help(.bindAddress)) var bindAddress: String?
    @Option(help: help(.tcpPort)) var port: String?
    @Option(help: help(.mailTransport)) var mailTransport: String?
    @Option(help: help(.mailDir)) var mailDir: String?
    @Option(help: help(.mailFrom)) var mailFrom: String?
    @Option(help: help(.smtpHost)) var smtpHost: String?
    @Option(help: help(.smtpPort)) var smtpPort: String?
    @Option(help: help(.smtpEmail)) var smtpEmail: String?
    @Option(help: help(.smtpFrom)) var smtpFrom: String?
    @Option(help: help(.smtpSecurity)) var smtpSecurity: String?
    @Option(help: help(.smtpCAFile)) var smtpCaFile: String?
    @Option(help: help(.smtpTimeoutSeconds)) var smtpTimeoutSeconds: String?
    @Option(help: help(.smtpMaxConcurrency)) var smtpMaxConcurrency: String?
    @Option(help: help(.smtpMaxQueued)) var smtpMaxQueued: String?
    @Option(help: help(.otpExpirationMinutes)) var otpExpirationMinutes: String?
    @Option(help: help(.otpMaxRetries)) var otpMaxRetries: String?
    @Option(help: help(.usernameMinLength)) var usernameMinLength: String?
    @Option(help: help(.usernameMaxLength)) var usernameMaxLength: String?
    @Option(help: help(.maxConnectionsPerIP)) var maxConnectionsPerIp: String?
    @Option(help: help(.maxLineBytes)) var maxLineBytes: String?
    @Option(help: help(.maxSendQueueBytes)) var maxSendqBytes: String?
    @Option(help: help(.historySize)) var historySize: String?
    @Option(help: help(.eventLoopThreads)) var eventLoopThreads: String?
    @Option(help: help(.shutdownTimeoutSeconds)) var shutdownTimeoutSeconds: String?
    @Option(help: help(.logLevel)) var logLevel: String?
    @Option(help: help(.adminEmails)) var adminEmails: String?
    @Option(help: help(.maxConnections)) var maxConnections: String?
    @Option(help: help(.connectionsPerIPPerMinute)) var connectionsPerIpPerMinute: String?
    @Option(help: help(.loginTimeoutSeconds)) var loginTimeoutSeconds: String?
    @Option(help: help(.maxEmailAttempts)) var maxEmailAttempts: String?
    @Option(help: help(.otpRequestIntervalSeconds)) var otpRequestIntervalSeconds: String?
    @Option(help: help(.otpRequestsPerHour)) var otpRequestsPerHour: String?
    @Option(help: help(.otpRequestsPerIPPerHour)) var otpRequestsPerIpPerHour: String?
    @Option(help: help(.otpRequestsPerMinute)) var otpRequestsPerMinute: String?
    @Option(help: help(.messageBurst)) var messageBurst: String?
    @Option(help: help(.messagesPerSecond)) var messagesPerSecond: String?
    @Option(help: help(.maxQueuedLines)) var maxQueuedLines: String?

    private var flags: [Setting: String] {
        let pairs: [(Setting, String?)] = [
            (.bindAddress, bindAddress), (.tcpPort, port), (.mailTransport, mailTransport),
            (.mailDir, mailDir), (.mailFrom, mailFrom), (.smtpHost, smtpHost), (.smtpPort, smtpPort),
            (.smtpEmail, smtpEmail), (.smtpFrom, smtpFrom), (.smtpSecurity, smtpSecurity),
            (.smtpCAFile, smtpCaFile), (.smtpTimeoutSeconds, smtpTimeoutSeconds),
            (.smtpMaxConcurrency, smtpMaxConcurrency), (.smtpMaxQueued, smtpMaxQueued),
            (.otpExpirationMinutes, otpExpirationMinutes),
            (.otpMaxRetries, otpMaxRetries), (.usernameMinLength, usernameMinLength),
            (.usernameMaxLength, usernameMaxLength), (.maxConnectionsPerIP, maxConnectionsPerIp),
            (.maxLineBytes, maxLineBytes), (.maxSendQueueBytes, maxSendqBytes), (.historySize, historySize),
            (.eventLoopThreads, eventLoopThreads), (.shutdownTimeoutSeconds, shutdownTimeoutSeconds),
            (.logLevel, logLevel), (.adminEmails, adminEmails), (.maxConnections, maxConnections),
            (.connectionsPerIPPerMinute, connectionsPerIpPerMinute), (.loginTimeoutSeconds, loginTimeoutSeconds),
            (.maxEmailAttempts, maxEmailAttempts), (.otpRequestIntervalSeconds, otpRequestIntervalSeconds),
            (.otpRequestsPerHour, otpRequestsPerHour), (.otpRequestsPerIPPerHour, otpRequestsPerIpPerHour),
            (.otpRequestsPerMinute, otpRequestsPerMinute), (.messageBurst, messageBurst),
            (.messagesPerSecond, messagesPerSecond), (.maxQueuedLines, maxQueuedLines),
        ]
        return Dictionary(uniqueKeysWithValues: pairs.compactMap { setting, value in value.map { (setting, $0) } })
    }

    func run() async throws {
        let configuration: ServerConfiguration
        do {
            configuration = try await ServerConfiguration.load(
                flags: flags,
                environmentFile: envFile ?? ".env",
                requireEnvironmentFile: envFile != nil
            )
        } catch {
            printError("chat-server: \(error)")
            throw ExitCode(2)
        }

        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "chat-server")
        let openFiles = raiseOpenFileLimit()
        if openFiles >= 0 && openFiles < configuration.limits.maxConnections + 64 {
            logger.warning(
                "The open-files limit is below MAX_CONNECTIONS; raise it (ulimit -n) to hold that many",
                metadata: ["open_files": "\(openFiles)", "max_connections": "\(configuration.limits.maxConnections)"])
        }

        let threads = configuration.eventLoopThreads == 0 ? System.coreCount : configuration.eventLoopThreads
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        do {
            if checkSmtp {
                try await Self.checkSMTP(configuration, group: group)
            } else {
                try await Self.serve(configuration, group: group, logger: logger)
            }
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    private static func serve(
        _ configuration: ServerConfiguration,
        group: MultiThreadedEventLoopGroup,
        logger: Logger
    ) async throws {

        let mailer: any Mailer
        switch configuration.mailTransport {
        case .log:
            mailer = LogMailer(logger: Logger(label: "chat-server.mail"))
            logger.warning(
                """
                DEVELOPMENT MAIL TRANSPORT: OTP codes are written to this log and no mail is sent, \
                so e-mail addresses are NOT verified. Set SMTP_HOST (see README) or MAIL_TRANSPORT=file \
                for real use.
                """
            )
        case .file(let directory):
            do {
                mailer = try FileMailer(directory: directory, from: configuration.mailFrom)
            } catch {
                printError("chat-server: Invalid setting MAIL_DIR: \(error)")
                throw ExitCode(2)
            }
            logger.notice("OTP mails are written as .eml files", metadata: ["mail_dir": "\(directory)"])
        case .smtp(let settings):
            do {
                mailer = try SMTPMailer(settings: settings, group: group)
            } catch {
                printError("chat-server: Invalid setting SMTP_CA_FILE: \(error)")
                throw ExitCode(2)
            }
            logger.notice("OTP mails are sent by SMTP", metadata: ["smtp": "\(settings)"])
        }

        let server = ChatServer(configuration: configuration, mailer: mailer, eventLoopGroup: group, logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(
            services: [.init(service: server)],
            logger: logger
        )
        groupConfiguration.gracefulShutdownSignals = [.sigterm, .sigint]
        // A safety net behind the server's own bounded shutdown.
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownTimeout + .seconds(5)
        let serviceGroup = ServiceGroup(configuration: groupConfiguration)
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("Server failed", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }

    /// `--check-smtp`: one SMTP session without a message, and a verdict on standard output.
    private static func checkSMTP(_ configuration: ServerConfiguration, group: MultiThreadedEventLoopGroup) async throws
    {
        guard case .smtp(let settings) = configuration.mailTransport else {
            printError(
                "chat-server: --check-smtp needs the SMTP transport: set SMTP_HOST (and SMTP_EMAIL, SMTP_PASSWORD)")
            throw ExitCode(2)
        }
        print("Checking \(settings) ...")
        do {
            let mailer = try SMTPMailer(settings: settings, group: group)
            try await mailer.check()
        } catch {
            print("SMTP check FAILED: \(error)")
            throw ExitCode(1)
        }
        let security =
            settings.security == .none ? "no TLS" : "TLS (\(settings.security.rawValue)), certificate verified"
        let login = settings.password.isEmpty ? "no login" : "logged in as \(settings.username)"
        print(
            "SMTP check passed: connected to \(settings.host):\(settings.port), \(security), \(login). No mail was sent."
        )
    }

    private static func help(_ setting: Setting) -> ArgumentHelp {
        let fallback = setting.defaultValue.isEmpty ? "" : ", default \(setting.defaultValue)"
        return ArgumentHelp("\(setting.summary) [\(setting.name)\(fallback)]")
    }

    static var settingsHelp: String {
        var lines = [
            "Settings come from, in rising priority: defaults, a .env file, environment variables, flags.",
            "",
            "SETTINGS (environment names):",
        ]
        for setting in Setting.allCases {
            let fallback = setting.defaultValue.isEmpty ? "" : " (default: \(setting.defaultValue))"
            lines.append("  \(setting.name)\(fallback)")
            lines.append("      \(setting.summary)")
        }
        return lines.joined(separator: "\n")
    }
}

private func printError(_ message: String) {
    var standardError = StandardErrorStream()
    print(message, to: &standardError)
}

private struct StandardErrorStream: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandleWriter.writeToStandardError(string)
    }
}
