import ChatCore
import ChatMail
import ChatServer
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A running server for one test, with its mail folder and a client factory.
public struct TestServer: Sendable {
    public let server: ChatServer
    public let port: Int
    /// The TLS listener's port, when the test configured one.
    public let tlsPort: Int?
    /// The web listener's port (plain HTTP), when the test configured one.
    public let webPort: Int?
    public let mail: MailFolder
    /// The clients' own event loop: clients are other programs, not the server's loops.
    public let group: MultiThreadedEventLoopGroup
    /// What the server logged so far.
    public let log: CapturedLog
    /// The server's time: a test moves it on instead of sleeping.
    public let clock: MovableServerClock
    private let nextAddress = Counter()

    public init(
        server: ChatServer, port: Int, tlsPort: Int? = nil, webPort: Int? = nil, mail: MailFolder,
        group: MultiThreadedEventLoopGroup, log: CapturedLog, clock: MovableServerClock = MovableServerClock()
    ) {
        self.webPort = webPort
        self.log = log
        self.clock = clock
        self.server = server
        self.port = port
        self.tlsPort = tlsPort
        self.mail = mail
        self.group = group
    }

    /// A fresh loopback source address for each client: 127.0.0.2, 127.0.0.3, ...
    public func nextSourceAddress() -> String {
        let n = nextAddress.next()
        return "127.0.\(n / 250).\(n % 250 + 2)"
    }

    public func connect(
        from source: String? = nil, reading: Bool = true, receiveBufferSize: Int? = nil
    ) async throws
        -> TestClient
    {
        try await TestClient.connect(
            port: port, from: source ?? nextSourceAddress(), group: group, reading: reading,
            receiveBufferSize: receiveBufferSize)
    }

    /// Connects to the TLS listener.
    public func connectTLS(from source: String? = nil, _ tls: TestClient.TLS) async throws -> TestClient {
        guard let tlsPort else { throw TestFailure("the test server has no TLS listener") }
        return try await TestClient.connect(port: tlsPort, from: source ?? nextSourceAddress(), group: group, tls: tls)
    }

    /// Opens a WebSocket to the web listener (see ``TestClient/connectWebSocket``).
    public func connectWeb(
        from source: String? = nil, headers: [(String, String)] = [], answersPings: Bool = true,
        receiveBufferSize: Int? = nil
    ) async throws -> TestClient {
        guard let webPort else { throw TestFailure("the test server has no web listener") }
        return try await TestClient.connectWebSocket(
            port: webPort, from: source ?? nextSourceAddress(), group: group, headers: headers,
            answersPings: answersPings, receiveBufferSize: receiveBufferSize)
    }

    /// Connects and reads the greeting.
    public func connectAndGreet(from source: String? = nil, receiveBufferSize: Int? = nil) async throws -> TestClient {
        let client = try await connect(from: source, receiveBufferSize: receiveBufferSize)
        let greeting = try await client.readLines(3)
        guard greeting == ServerLine.welcome else { throw TestFailure("unexpected greeting \(greeting)") }
        return client
    }

    /// Logs a user in all the way, reading the code from the mail folder; the welcome
    /// lines are consumed.
    public func login(
        _ username: String,
        email: String? = nil,
        from source: String? = nil,
        receiveBufferSize: Int? = nil
    ) async throws -> TestClient {
        let client = try await connectAndGreet(from: source, receiveBufferSize: receiveBufferSize)
        try await logIn(client, as: username, email: email)
        return client
    }

    /// Logs an already greeted client in (over any listener), reading the code from the
    /// mail folder; the welcome lines are consumed.
    /// Logs in each name in turn, and lets everyone read up to the last one's arrival in
    /// `#general`: the clients start their tests with nothing unread from the logins.
    public func loginTogether(_ names: [String]) async throws -> [TestClient] {
        var clients: [TestClient] = []
        for name in names { clients.append(try await login(name)) }
        if let last = names.last {
            for client in clients.dropLast() { try await client.readUntil("*** \(last) joined the room ***") }
        }
        return clients
    }

    public func logIn(_ client: TestClient, as username: String, email: String? = nil) async throws {
        let email = email ?? "\(username.lowercased())@example.com"
        let mailsBefore = mail.mails(for: email).count
        try await client.send(email)
        try await client.readUntil(ServerLine.otpPrompt)
        let code = try await mail.code(for: email, mailIndex: mailsBefore)
        try await client.send(code)
        try await client.readUntil(ServerLine.usernamePrompt(minLength: 3, maxLength: 16))
        try await client.send(username)
        try await client.readUntil("*** Type /help for available commands. ***")
    }

    /// Waits (bounded) until the server holds what `condition` wants.
    public func waitForOccupancy(
        timeout: Duration = .seconds(10),
        _ condition: (ChatServer.Occupancy) -> Bool
    ) async throws -> ChatServer.Occupancy {
        let reached = try await poll(timeout: timeout) {
            let occupancy = server.occupancy
            return condition(occupancy) ? occupancy : nil
        }
        guard let reached else { throw TestFailure("server still holds \(server.occupancy)") }
        return reached
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public final class Counter: Sendable {
    private let value = NIOLockedValueBox(0)
    public func next() -> Int {
        value.withLockedValue { value in
            defer { value += 1 }
            return value
        }
    }
}

/// Starts a server on an ephemeral loopback port with the `file` mail transport, runs
/// `body` under a time limit, then shuts the server down gracefully and cleans up.
public func withTestServer(
    timeLimit: Duration = .seconds(120),
    mailer customMailer: (any Mailer)? = nil,
    configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (TestServer) async throws -> Void
) async throws {
    let mail = try MailFolder.makeTemporary()
    defer { mail.remove() }
    var configuration = ServerConfiguration()
    configuration.bindAddress = "127.0.0.1"
    configuration.port = 0
    configuration.mailTransport = .file(directory: mail.path)
    configuration.shutdownTimeout = .seconds(2)
    // Most tests log in many times from few addresses and send lines quickly; the abuse
    // limits get their own tests, which set them back.
    configuration.limits = AbuseLimits.relaxedForTests
    configure(&configuration)

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    // Everything the server logs, at every level, is kept and checked for secrets below.
    let capturedLog = CapturedLog()
    var logger = Logger(label: "chat-test") { _ in CapturingLogHandler(log: capturedLog) }
    logger.logLevel = .trace
    let clock = MovableServerClock()
    let server = try ChatServer(
        configuration: configuration,
        mailer: try customMailer ?? FileMailer(directory: mail.path),
        eventLoopGroup: group,
        logger: logger,
        clock: clock.serverClock
    )
    let outcome: Result<Void, any Error> = await withTaskGroup(of: Result<Void, any Error>?.self) { tasks in
        tasks.addTask {
            do { try await server.run() } catch { return .failure(error) }
            return nil
        }
        let result: Result<Void, any Error>
        do {
            let port = try await server.localAddress(of: "tcp")?.port ?? 0
            let tlsPort = try await server.localAddress(of: "tls")?.port
            let webPort = try await server.localAddress(of: "web")?.port
            let testServer = TestServer(
                server: server, port: port, tlsPort: tlsPort, webPort: webPort, mail: mail, group: clientGroup,
                log: capturedLog,
                clock: clock)
            result = await runWithTimeLimit(timeLimit) { try await body(testServer) }
        } catch {
            result = .failure(error)
        }
        server.shutdown()
        for await serverResult in tasks {
            if case .failure(let error)? = serverResult { return .failure(error) }
        }
        return result
    }
    try await clientGroup.shutdownGracefully()
    try await group.shutdownGracefully()
    try outcome.get()
    try expectNoSecrets(in: capturedLog.text, mail: mail)
}

/// Runs `body`, failing it when it takes longer than `limit`.
public func runWithTimeLimit(
    _ limit: Duration,
    _ body: @escaping @Sendable () async throws -> Void
) async -> Result<Void, any Error> {
    await withTaskGroup(of: Result<Void, any Error>.self) { tasks in
        tasks.addTask {
            do { try await body() } catch { return .failure(error) }
            return .success(())
        }
        tasks.addTask {
            try? await Task.sleep(for: limit)  // The time limit itself, cancelled when the body ends.
            return .failure(TestFailure("test exceeded its time limit of \(limit)"))
        }
        let first = await tasks.next()!
        tasks.cancelAll()
        return first
    }
}

extension AbuseLimits {
    public static let relaxedForTests: AbuseLimits = {
        var limits = AbuseLimits.defaults
        limits.connectionsPerIPPerMinute = 1_000_000
        limits.otpRequestInterval = .zero
        limits.otpRequestsPerHour = 1000
        limits.otpRequestsPerIPPerHour = 1_000_000
        limits.otpRequestsPerMinute = 1_000_000
        limits.messageBurst = 100_000
        limits.messagesPerSecond = 100_000
        limits.maxQueuedLines = 100_000
        return limits
    }()
}

/// The passwords the tests give SMTP servers: none may ever reach a log.
public let testSecrets = ["app-password-123", "s3cret-app-pw", "wrong-password", "hunter2-secret"]

/// No OTP code that was mailed, and no test password, appears in the server's log.
public func expectNoSecrets(in log: String, mail: MailFolder) throws {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: mail.path)) ?? []
    for name in names where name.hasSuffix(".eml") {
        let text = try String(contentsOfFile: mail.path + "/" + name, encoding: .utf8)
        guard let range = text.range(of: #"code is: \d{6}"#, options: .regularExpression) else { continue }
        let code = String(text[range].suffix(6))
        if log.contains(code) { throw TestFailure("an OTP code (\(code)) appears in the server log") }
    }
    for secret in testSecrets where log.contains(secret) {
        throw TestFailure("a password appears in the server log")
    }
    // A resume token is only ever sent, in its `*** Resume token: ... ***` line (the tests
    // that ask for one also look for the token itself).
    if log.contains("Resume token:") { throw TestFailure("a resume token line appears in the server log") }
}

/// The server log of one test, kept in memory.
public final class CapturedLog: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])
    public func append(_ line: String) { lines.withLockedValue { $0.append(line) } }
    public var text: String { lines.withLockedValue { $0.joined(separator: "\n") } }
}

public struct CapturingLogHandler: LogHandler {
    public let log: CapturedLog
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        log.append("\(event.level) \(fields) \(event.message)")
    }
}
