import ChatCore
import ChatTestSupport
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// The real `chat-server` executable as a child process, driven by real clients.
@Suite(.serialized) struct EndToEndTests {
    @Test func twoUsersChatThenSIGTERMShutsDownCleanly() async throws {
        let mail = try MailFolder.makeTemporary()
        defer { mail.remove() }
        let server = try ServerProcess.start(environment: [
            "MAIL_TRANSPORT": "file",
            "MAIL_DIR": mail.path,
            "TCP_PORT": "0",
            "BIND_ADDRESS": "127.0.0.1",
            "LOG_LEVEL": "info",
        ])
        defer { server.kill() }
        let port = try await server.waitForPort()

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let outcome = await runWithTimeLimit(.seconds(60)) {
            let (alice, bob) = try await Self.aliceAndBob(port: port, mail: mail, group: group)
            try await alice.send("hi bob")
            #expect(try await bob.readLine() == "[alice]: hi bob")
            try await bob.send("/msg alice hi alice")
            #expect(try await alice.readLine() == "[alice]: hi bob")
            #expect(try await alice.readLine() == "[bob]: [PM] hi alice")

            server.terminate()
            let aliceLines = try await alice.waitForClose()
            #expect(aliceLines == ["*** Server is shutting down ***"], "\(aliceLines)")
            let bobLines = try await bob.waitForClose()
            #expect(bobLines.last == "*** Server is shutting down ***", "\(bobLines)")
            let status = try await server.waitForExit(timeout: .seconds(20))
            #expect(status == 0)
        }
        try await group.shutdownGracefully()
        try outcome.get()
        #expect(server.log.contains("Server stopped"))
        // Without DATA_DIR the operator is told once that a restart forgets the chat's state.
        #expect(server.log.components(separatedBy: "State is kept in memory only").count - 1 == 1, "\(server.log)")
        // The start of the shutdown, with what began it and what it drains.
        let start = try #require(server.log.components(separatedBy: "\n").first { $0.contains("Shutting down") })
        #expect(start.contains("connections=2") && start.contains("signal=SIGTERM"), "\(start)")
    }

    /// Operators run the server as an ordinary user (the systemd unit's `DynamicUser=`), as
    /// `nobody` here when the test runs as root: what only a privileged process may set on a
    /// socket (`SO_DEBUG`, the socket-level option numbered as `TCP_NODELAY` is) would fail
    /// every accepted connection, and every connection to Redis. On its own and as a cluster
    /// node, two users chat.
    @Test(arguments: [false, true])
    func anOrdinaryUserRunsTheServer(asClusterNode: Bool) async throws {
        let mail = try MailFolder.makeTemporary()
        defer { mail.remove() }
        let user = UnprivilegedRun.user
        if let user {
            try FileManager.default.setAttributes(
                [.ownerAccountID: user.uid, .groupOwnerAccountID: user.gid], ofItemAtPath: mail.path)
        }
        let redis = asClusterNode ? try await RedisServerProcess.started() : nil
        defer { redis?.kill() }
        var environment = [
            "MAIL_TRANSPORT": "file", "MAIL_DIR": mail.path, "TCP_PORT": "0", "BIND_ADDRESS": "127.0.0.1",
            "LOG_LEVEL": "info",
        ]
        if let redis { environment["CLUSTER_REDIS_URL"] = "redis://127.0.0.1:\(redis.port)" }
        let server = try ServerProcess.start(environment: environment, user: user)
        defer { server.kill() }
        let port = try await server.waitForPort()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let outcome = await runWithTimeLimit(.seconds(60)) {
            let (alice, bob) = try await Self.aliceAndBob(port: port, mail: mail, group: group)
            try await bob.send("hello from an ordinary user's server")
            #expect(try await alice.readLine() == "[bob]: hello from an ordinary user's server")
        }
        try await group.shutdownGracefully()
        try outcome.get()
        #expect(!server.log.contains("Cannot set up an accepted connection"), "\(server.log)")
        server.terminate()
        #expect(try await server.waitForExit(timeout: .seconds(20)) == 0, "\(server.log)")
    }

    @Test func anInvalidSettingStopsStartUpNamingIt() async throws {
        let server = try ServerProcess.start(environment: ["TCP_PORT": "http", "SMTP_PASSWORD": "hunter2-secret"])
        defer { server.kill() }
        let status = try await server.waitForExit(timeout: .seconds(20))
        #expect(status != 0)
        #expect(server.log.contains("Invalid setting TCP_PORT"))
        #expect(!server.log.contains("hunter2-secret"))
        // Every setting is checked before anything else is logged: the error is all there is.
        #expect(
            !server.log.contains("DEVELOPMENT MAIL TRANSPORT") && !server.log.contains("OTP mails"), "\(server.log)")
    }

    @Test func theDevelopmentTransportWarnsAndLogsTheCode() async throws {
        let server = try ServerProcess.start(environment: ["TCP_PORT": "0", "BIND_ADDRESS": "127.0.0.1"])
        defer { server.kill() }
        let port = try await server.waitForPort()
        #expect(server.log.contains("DEVELOPMENT MAIL TRANSPORT"))

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let outcome = await runWithTimeLimit(.seconds(60)) {
            let client = try await TestClient.connect(port: port, from: "127.0.0.2", group: group)
            try await client.readUntil("*** Enter your email address below ***")
            try await client.send("dev@example.com")
            try await client.readUntil("*** Enter OTP code: ***")
            let code = try await server.waitForLog(#"code=(\d{6})"#)
            try await client.send(code)
            #expect(try await client.readLine() == "*** OTP verified successfully! ***")
            server.terminate()
            _ = try await server.waitForExit(timeout: .seconds(20))
        }
        try await group.shutdownGracefully()
        try outcome.get()
    }

    @Test func loginWithACodeMailedByTheRealSMTPTransport() async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        let smtp = try await SMTPTestServer.start(
            mode: .starttls, certificates: certificates, user: "chat@example.com", password: "s3cret-app-pw")
        // SMTP settings only, as in the seed's .env: no MAIL_TRANSPORT.
        let server = try ServerProcess.start(environment: [
            "SMTP_HOST": "localhost",
            "SMTP_PORT": "\(smtp.port)",
            "SMTP_EMAIL": "chat@example.com",
            "SMTP_PASSWORD": "s3cret-app-pw",
            "SMTP_CA_FILE": certificates.caCertificatePath,
            "TCP_PORT": "0",
            "BIND_ADDRESS": "127.0.0.1",
        ])
        defer { server.kill() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let outcome = await runWithTimeLimit(.seconds(60)) {
            let port = try await server.waitForPort()
            let client = try await TestClient.connect(port: port, from: "127.0.0.2", group: group)
            try await client.readUntil("*** Enter your email address below ***")
            try await client.send("carol@example.com")
            try await client.readUntil("*** Enter OTP code: ***")
            let message = try #require(try await smtp.waitForMessages(1).first)
            try await client.send(try SMTPLoginTests.code(in: message.data))
            #expect(try await client.readLine() == "*** OTP verified successfully! ***")
            server.terminate()
            #expect(try await server.waitForExit(timeout: .seconds(20)) == 0, "\(server.log)")
        }
        try await group.shutdownGracefully()
        await smtp.stop()
        try outcome.get()
        #expect(server.log.contains("OTP mails are sent by SMTP"))
        #expect(!server.log.contains("s3cret-app-pw"))
        #expect(!server.log.contains("DEVELOPMENT MAIL TRANSPORT"))
    }

    @Test func checkSMTPGivesAVerdict() async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        let smtp = try await SMTPTestServer.start(
            mode: .starttls, certificates: certificates, user: "chat@example.com", password: "s3cret-app-pw")
        let environment = [
            "SMTP_HOST": "localhost", "SMTP_PORT": "\(smtp.port)", "SMTP_EMAIL": "chat@example.com",
            "SMTP_CA_FILE": certificates.caCertificatePath,
        ]
        let good = try ServerProcess.start(
            environment: environment.merging(["SMTP_PASSWORD": "s3cret-app-pw"]) { $1 }, arguments: ["--check-smtp"])
        defer { good.kill() }
        #expect(try await good.waitForExit(timeout: .seconds(30)) == 0)
        #expect(good.log.contains("SMTP check passed"))
        let bad = try ServerProcess.start(
            environment: environment.merging(["SMTP_PASSWORD": "wrong-pw"]) { $1 }, arguments: ["--check-smtp"])
        defer { bad.kill() }
        #expect(try await bad.waitForExit(timeout: .seconds(30)) == 1)
        #expect(bad.log.contains("SMTP check FAILED"))
        #expect(!bad.log.contains("wrong-pw"))
        await smtp.stop()
        #expect(try smtp.received().isEmpty)
    }

    /// Out of descriptors, the server keeps the waiting connections in its backlog, says so
    /// once, retries every second, and takes them when descriptors are free again; the
    /// connected users notice nothing.
    @Test func whenDescriptorsRunOutAcceptingPausesAndResumes() async throws {
        let mail = try MailFolder.makeTemporary()
        defer { mail.remove() }
        let server = try ServerProcess.start(
            environment: [
                "MAIL_TRANSPORT": "file", "MAIL_DIR": mail.path, "TCP_PORT": "0", "BIND_ADDRESS": "127.0.0.1",
                "LOG_LEVEL": "info",
            ],
            openFileLimit: 48)
        defer { server.kill() }
        let port = try await server.waitForPort()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let outcome = await runWithTimeLimit(.seconds(90)) {
            let alice = try await Self.login("alice", port: port, from: "127.0.0.2", mail: mail, group: group)
            // Guests until the server cannot accept one more (bounded by the limit itself).
            var guests: [TestClient] = []
            var waiting: TestClient?
            for index in 0..<48 {
                let guest = try await TestClient.connect(port: port, from: "127.0.1.\(index + 2)", group: group)
                if (try? await guest.readUntil("*** Enter your email address below ***", timeout: .seconds(3))) == nil {
                    waiting = guest
                    break
                }
                guests.append(guest)
            }
            let stuck = try #require(waiting, "the server accepted \(guests.count) guests under a limit of 48")
            _ = try await server.waitForLog("(Cannot accept connections; retrying every second)")
            try await alice.send("/users")
            #expect(try await alice.readUntil("  - alice (you)") == ["Online Users (1):"])
            // Descriptors free again: the waiting connection is taken within the retry.
            for guest in guests.prefix(4) { await guest.close() }
            try await stuck.readUntil("*** Enter your email address below ***", timeout: .seconds(10))
            _ = try await server.waitForLog("(Accepting connections again)")
            #expect(server.log.components(separatedBy: "Cannot accept connections").count == 2, "\(server.log)")
            for guest in guests.dropFirst(4) { await guest.close() }
            await stuck.close()
            await alice.close()
        }
        try await group.shutdownGracefully()
        try outcome.get()
    }

    /// alice from 127.0.0.2, then bob from 127.0.0.3, logged in to #general; alice has seen bob join.
    static func aliceAndBob(
        port: Int, mail: MailFolder, group: MultiThreadedEventLoopGroup
    ) async throws -> (alice: TestClient, bob: TestClient) {
        let alice = try await login("alice", port: port, from: "127.0.0.2", mail: mail, group: group)
        let bob = try await login("bob", port: port, from: "127.0.0.3", mail: mail, group: group)
        #expect(try await alice.readLine() == "*** bob joined the room ***")
        return (alice, bob)
    }

    static func login(
        _ name: String, port: Int, from source: String, mail: MailFolder, group: MultiThreadedEventLoopGroup,
        email: String? = nil, mailIndex: Int = 0
    ) async throws -> TestClient {
        let email = email ?? "\(name)@example.com"
        let client = try await TestClient.connect(port: port, from: source, group: group)
        try await client.readUntil("*** Enter your email address below ***")
        try await client.send(email)
        try await client.readUntil("*** Enter OTP code: ***")
        try await client.send(try await mail.code(for: email, mailIndex: mailIndex))
        try await client.readUntil("*** OTP verified successfully! ***")
        _ = try await client.readLine()
        try await client.send(name)
        try await client.readUntil("*** Type /help for available commands. ***")
        return client
    }
}

/// A `chat-server` child process with its output captured.
final class ServerProcess: Sendable {
    private let process: Process
    private let output = NIOLockedValueBox("")

    private init(process: Process) { self.process = process }

    /// The built executable, next to the test bundle (`swift build` / `swift test` put both
    /// in the same folder).
    static var executable: URL {
        get throws {
            let candidates = [
                URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
                Bundle.main.bundleURL,
                Bundle.main.bundleURL.deletingLastPathComponent(),
                URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .deletingLastPathComponent().appendingPathComponent(".build/debug"),
            ]
            for folder in candidates {
                let url = folder.appendingPathComponent("chat-server")
                if FileManager.default.isExecutableFile(atPath: url.path) { return url }
            }
            throw TestFailure("chat-server executable not found near \(candidates.map(\.path))")
        }
    }

    /// - Parameters:
    ///   - openFileLimit: runs the server under `prlimit` with this many descriptors (soft
    ///     and hard), as a host with a low `ulimit -n` would.
    ///   - user: runs the server under this user and group id (``UnprivilegedRun``), for
    ///     file permissions and socket options to apply to it as to an operator's service.
    static func start(
        environment: [String: String], arguments: [String] = [], openFileLimit: Int? = nil,
        user: (uid: UInt32, gid: UInt32)? = nil
    ) throws -> ServerProcess {
        let process = Process()
        if let openFileLimit {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--nofile=\(openFileLimit):\(openFileLimit)", "--", try executable.path] + arguments
        } else if let user {
            (process.executableURL, process.arguments) = try UnprivilegedRun.command(
                try executable.path, arguments: arguments, as: user)
        } else {
            process.executableURL = try executable
            process.arguments = arguments
        }
        // A clean environment plus the test's settings; run in a folder without a .env.
        // TSAN_OPTIONS too: under ThreadSanitizer the child is instrumented as well, and its
        // reports (in its log) must use the same suppressions.
        let inherited = ProcessInfo.processInfo.environment
        let environment = ["PATH": inherited["PATH"] ?? "/usr/bin"]
            .merging(inherited.filter { $0.key == "TSAN_OPTIONS" }) { $1 }
            .merging(environment) { $1 }
        process.environment = user == nil ? environment : try UnprivilegedRun.environment(environment)
        process.currentDirectoryURL = FileManager.default.temporaryDirectory
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let server = ServerProcess(process: process)
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            server.output.withLockedValue { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        return server
    }

    var log: String { output.withLockedValue { $0 } }

    /// Waits (bounded) for a log line matching `pattern` and returns its first group.
    func waitForLog(_ pattern: String, timeout: Duration = .seconds(60)) async throws -> String {
        let regex = try NSRegularExpression(pattern: pattern)
        let found = try await poll(every: .milliseconds(20), timeout: timeout) { () throws -> String? in
            let text = log
            if let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
                let range = Range(match.range(at: 1), in: text)
            {
                return String(text[range])
            }
            guard process.isRunning else { throw TestFailure("chat-server exited: \(text)") }
            return nil
        }
        if let found { return found }
        throw TestFailure("no log line matching \(pattern): \(log)")
    }

    func waitForPort() async throws -> Int {
        let port = try await waitForLog(#"port=(\d+) .*Listening"#)
        return Int(port)!
    }

    func terminate() { process.terminate() }

    var pid: Int32 { process.processIdentifier }

    /// SIGHUP: re-read the TLS certificate and key.
    func hangUp() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGHUP) }
    }

    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    func waitForExit(timeout: Duration) async throws -> Int32 {
        guard try await poll(every: .milliseconds(20), timeout: timeout, until: { !process.isRunning }) else {
            throw TestFailure("chat-server did not exit: \(log)")
        }
        return process.terminationStatus
    }
}
