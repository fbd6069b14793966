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
        discussion: Setting.helpText
    )

    @Option(help: "Read settings from this .env file (default: ./.env when it exists).")
    var envFile: String?

    @Flag(help: "Connect to the SMTP server, negotiate TLS and log in without sending mail; print a verdict and exit.")
    var checkSmtp = false

    /// Every setting's flag (`--history-size 50`), read against the catalogue in `Setting`
    /// rather than declared here one by one; `--help` lists them from the same catalogue.
    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settingFlags: [String] = []

    func run() async throws {
        // A write past the file size limit (RLIMIT_FSIZE) fails with EFBIG, which the journal
        // handles as a full disk, instead of killing the process.
        signal(SIGXFSZ, SIG_IGN)
        let configuration: ServerConfiguration
        do {
            configuration = try await ServerConfiguration.load(
                flags: try Setting.values(fromFlags: settingFlags),
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
        case .file(let directory):
            do {
                mailer = try FileMailer(directory: directory, from: configuration.mailFrom)
            } catch {
                printError("chat-server: Invalid setting MAIL_DIR: \(error)")
                throw ExitCode(2)
            }
        case .smtp(let settings):
            do {
                mailer = try SMTPMailer(settings: settings, group: group)
            } catch {
                printError("chat-server: Invalid setting SMTP_CA_FILE: \(error)")
                throw ExitCode(2)
            }
        }

        let server: ChatServer
        do {
            server = try ChatServer(configuration: configuration, mailer: mailer, eventLoopGroup: group, logger: logger)
        } catch {
            printError("chat-server: \(error)")
            throw ExitCode(2)
        }
        // Every setting has been checked by now (the TLS pair by the server): what a start
        // that then fails would have logged first is logged only now.
        announce(configuration, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server)]
        if configuration.tls != nil {
            services.append(
                .init(service: CertificateReloadOnHangup(server: server), successTerminationBehavior: .ignore))
        }
        var groupConfiguration = ServiceGroupConfiguration(services: services, logger: logger)
        // SIGTERM and SIGINT are handled below rather than by the group, so that the log says
        // which one began the shutdown, and how many connections it drains.
        groupConfiguration.gracefulShutdownSignals = []
        // A safety net behind the server's own bounded shutdown.
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownTimeout + .seconds(5)
        let serviceGroup = ServiceGroup(configuration: groupConfiguration)
        // Trapped before anything listens: a SIGTERM that comes at once must begin the
        // shutdown, not end the process.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let signalHandling = Task {
            for await signal in signals {
                // Named first, for the log line the shutdown begins with; the group then
                // shuts every service down, the server among them.
                server.shutdownRequested(by: "\(signal)")
                await serviceGroup.triggerGracefulShutdown()
            }
        }
        defer { signalHandling.cancel() }
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("Server failed", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }

    /// What the operator should know of a start whose settings are all valid.
    private static func announce(_ configuration: ServerConfiguration, logger: Logger) {
        let openFiles = raiseOpenFileLimit()
        if openFiles >= 0 && openFiles < configuration.limits.maxConnections + 64 {
            logger.warning(
                "The open-files limit is below MAX_CONNECTIONS; raise it (ulimit -n) to hold that many",
                metadata: ["open_files": "\(openFiles)", "max_connections": "\(configuration.limits.maxConnections)"])
        }
        switch configuration.mailTransport {
        case .log:
            logger.warning(
                """
                DEVELOPMENT MAIL TRANSPORT: OTP codes are written to this log and no mail is sent, \
                so e-mail addresses are NOT verified. Set SMTP_HOST (see docs/CONFIGURATION.md) or MAIL_TRANSPORT=file \
                for real use.
                """
            )
        case .file(let directory):
            logger.notice("OTP mails are written as .eml files", metadata: ["mail_dir": "\(directory)"])
        case .smtp(let settings):
            logger.notice("OTP mails are sent by SMTP", metadata: ["smtp": "\(settings)"])
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
