import ChatCore
import ChatMail
import ChatServer
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A running server for one test, with its mail folder and a client factory.
struct TestServer: Sendable {
    let server: ChatServer
    let port: Int
    let mail: MailFolder
    /// The clients' own event loop: clients are other programs, not the server's loops.
    let group: MultiThreadedEventLoopGroup
    private let nextAddress = Counter()

    init(server: ChatServer, port: Int, mail: MailFolder, group: MultiThreadedEventLoopGroup) {
        self.server = server
        self.port = port
        self.mail = mail
        self.group = group
    }

    /// A fresh loopback source address for each client: 127.0.0.2, 127.0.0.3, ...
    func nextSourceAddress() -> String {
        let n = nextAddress.next()
        return "127.0.\(n / 250).\(n % 250 + 2)"
    }

    func connect(from source: String? = nil, reading: Bool = true, receiveBufferSize: Int? = nil) async throws
        -> TestClient
    {
        try await TestClient.connect(
            port: port, from: source ?? nextSourceAddress(), group: group, reading: reading,
            receiveBufferSize: receiveBufferSize)
    }

    /// Connects and reads the greeting.
    func connectAndGreet(from source: String? = nil, receiveBufferSize: Int? = nil) async throws -> TestClient {
        let client = try await connect(from: source, receiveBufferSize: receiveBufferSize)
        let greeting = try await client.readLines(3)
        guard greeting == ServerLine.welcome else { throw TestFailure("unexpected greeting \(greeting)") }
        return client
    }

    /// Logs a user in all the way, reading the code from the mail folder; the welcome
    /// lines are consumed.
    func login(
        _ username: String,
        email: String? = nil,
        from source: String? = nil,
        receiveBufferSize: Int? = nil
    ) async throws -> TestClient {
        let email = email ?? "\(username.lowercased())@example.com"
        let client = try await connectAndGreet(from: source, receiveBufferSize: receiveBufferSize)
        let mailsBefore = mail.mails(for: email).count
        try await client.send(email)
        try await client.readUntil(ServerLine.otpPrompt)
        let code = try await mail.code(for: email, mailIndex: mailsBefore)
        try await client.send(code)
        try await client.readUntil(ServerLine.usernamePrompt(minLength: 3, maxLength: 16))
        try await client.send(username)
        try await client.readUntil("*** Type /help for available commands. ***")
        return client
    }

    /// Waits (bounded) until the server holds what `condition` wants.
    func waitForOccupancy(
        timeout: Duration = .seconds(10),
        _ condition: (ChatServer.Occupancy) -> Bool
    ) async throws -> ChatServer.Occupancy {
        let deadline = ContinuousClock.now + timeout
        var occupancy = server.occupancy
        while !condition(occupancy) {
            guard ContinuousClock.now < deadline else { throw TestFailure("server still holds \(occupancy)") }
            try await Task.sleep(for: .milliseconds(10))
            occupancy = server.occupancy
        }
        return occupancy
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}

/// Starts a server on an ephemeral loopback port with the `file` mail transport, runs
/// `body` under a time limit, then shuts the server down gracefully and cleans up.
func withTestServer(
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
    configure(&configuration)

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var logger = Logger(label: "chat-test")
    logger.logLevel = .warning
    let server = ChatServer(
        configuration: configuration,
        mailer: try customMailer ?? FileMailer(directory: mail.path),
        eventLoopGroup: group,
        logger: logger
    )
    let outcome: Result<Void, any Error> = await withTaskGroup(of: Result<Void, any Error>?.self) { tasks in
        tasks.addTask {
            do { try await server.run() } catch { return .failure(error) }
            return nil
        }
        let result: Result<Void, any Error>
        do {
            let port = try await server.localAddress.port!
            let testServer = TestServer(server: server, port: port, mail: mail, group: clientGroup)
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
}

/// Runs `body`, failing it when it takes longer than `limit`.
func runWithTimeLimit(
    _ limit: Duration,
    _ body: @escaping @Sendable () async throws -> Void
) async -> Result<Void, any Error> {
    await withTaskGroup(of: Result<Void, any Error>.self) { tasks in
        tasks.addTask {
            do { try await body() } catch { return .failure(error) }
            return .success(())
        }
        tasks.addTask {
            try? await Task.sleep(for: limit)
            return .failure(TestFailure("test exceeded its time limit of \(limit)"))
        }
        let first = await tasks.next()!
        tasks.cancelAll()
        return first
    }
}
