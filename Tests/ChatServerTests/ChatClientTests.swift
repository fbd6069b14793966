import ChatCore
import ChatTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import ChatServer

/// `chat-client` against a real server: on a real pseudo-terminal (tmux), and piped.
@Suite(.serialized) struct ChatClientTests {
    private static var client: String {
        get throws {
            try ServerProcess.executable.deletingLastPathComponent().appendingPathComponent("chat-client").path
        }
    }

    /// The client as a terminal runs it, keeping its resume tokens in a folder of this test
    /// run's (never in the home folder of whoever runs the tests).
    private static var terminalClient: String {
        get throws { "XDG_STATE_HOME=\(stateHome) \(try client)" }
    }
    private static let stateHome = FileManager.default.temporaryDirectory
        .appendingPathComponent("chat-client-state-\(UUID().uuidString)").path

    /// Logs the terminal's user in as `name`, reading the code from the mail folder.
    private func logIn(_ terminal: TerminalSession, as name: String, server: TestServer) async throws {
        try await terminal.waitFor("e-mail>")
        try terminal.type("\(name)@example.com")
        try terminal.press("Enter")
        try await terminal.waitFor("code>")
        let code = try await server.mail.code(for: "\(name)@example.com", mailIndex: 0)
        try terminal.type(code)
        // The client echoes asynchronously (slowly under TSan): wait for the mask, then
        // check it is the whole prompt line.
        try await terminal.waitFor("code> ******")
        #expect(try terminal.promptLine() == "code> ******")
        try terminal.press("Enter")
        try await terminal.waitFor("username>")
        // The code was shown masked, and never in clear.
        let screen = try terminal.screen()
        #expect(!screen.contains(code))
        #expect(screen.contains("-- > ******"))
        try terminal.type(name)
        try terminal.press("Enter")
        try await terminal.waitFor("#general>")
    }

    @Test(.enabled(if: TerminalSession.tmux != nil, "tmux is not installed"))
    func aUserLogsInAndChatsWithAHalfTypedLineKeptIntact() async throws {
        try await withTestServer { server in
            let terminal = try TerminalSession("\(try Self.terminalClient) 127.0.0.1:\(server.port)")
            defer { terminal.close() }
            try await logIn(terminal, as: "alice", server: server)

            // A half-typed line stays as it is while lines arrive above it.
            try terminal.type("half typed")
            try await terminal.waitFor("#general> half typed")
            let bob = try await server.login("bob")
            try await bob.send("hello alice")
            try await bob.send("second line")
            let screen = try await terminal.waitFor("[bob]: second line")
            #expect(try terminal.promptLine() == "#general> half typed")
            let lines = screen.split(separator: "\n").map(String.init)
            #expect(lines.firstIndex(of: "[bob]: hello alice")! < lines.firstIndex(of: "[bob]: second line")!)
            // Editing: Left, then typing, inserts at the cursor.
            try terminal.press("Left", "Left", "Left", "Left", "Left")
            try terminal.type("-")
            try await terminal.waitFor("#general> half -typed")
            try terminal.press("Enter")
            try await bob.readUntil("[alice]: half -typed")

            // Colours (as tmux re-encodes them): system lines in cyan, the mention of alice
            // on yellow, bob's name in a 256-colour entry.
            let colored = try terminal.screen(escapes: true).split(separator: "\n")
            let mention = try #require(colored.first { $0.contains("hello alice") })
            #expect(mention.contains("\u{1B}[43m"))
            #expect(mention.contains("\u{1B}[38;5;"))
            #expect(colored.contains { $0.contains("\u{1B}[36m") && $0.contains("*** ") })

            // Tab completes a name the client has seen, Up recalls the last line.
            try terminal.type("/msg b")
            try terminal.press("Tab")
            try await terminal.waitFor("#general> /msg bob\n")
            try terminal.press("C-u")
            try terminal.press("Up")
            try await terminal.waitFor("#general> half -typed")
            try terminal.press("C-c")
            try await terminal.waitFor("#general>\n")

            // Ctrl-D on an empty line leaves; the terminal is as it was before.
            try terminal.press("C-d")
            #expect(try await terminal.exitStatus() == 0)
            try await bob.readUntil("*** alice left the room ***")
        }
    }

    @Test(.enabled(if: TerminalSession.tmux != nil, "tmux is not installed"))
    func theTerminalIsRestoredWhenTheClientEnds() async throws {
        try await withTestServer { server in
            // After the client, stty reports the terminal's modes: canonical input and echo
            // must be back.
            let terminal = try TerminalSession(
                "\(try Self.terminalClient) 127.0.0.1:\(server.port); stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo"
            )
            defer { terminal.close() }
            try await terminal.waitFor("e-mail>")
            try terminal.type("/quit")
            try terminal.press("Enter")
            let screen = try await terminal.waitFor("icanon\necho")
            #expect(screen.contains("*** Goodbye! ***"))
        }
    }

    @Test(.enabled(if: TerminalSession.tmux != nil, "tmux is not installed"))
    func noColorMeansNoColours() async throws {
        try await withTestServer { server in
            let terminal = try TerminalSession("NO_COLOR=1 \(try Self.terminalClient) 127.0.0.1:\(server.port)")
            defer { terminal.close() }
            try await terminal.waitFor("e-mail>")
            let screen = try terminal.screen(escapes: true)
            #expect(screen.contains("*** Welcome to TCP Chat Server! ***"))
            #expect(!screen.contains("\u{1B}[36m"))
        }
    }

    @Test(.enabled(if: TerminalSession.tmux != nil, "tmux is not installed"))
    func aLostConnectionSaysSoAndExitsNonZero() async throws {
        try await withTestServer { server in
            let terminal = try TerminalSession("\(try Self.terminalClient) 127.0.0.1:\(server.port)")
            defer { terminal.close() }
            try await terminal.waitFor("e-mail>")
            try terminal.type("half typed")
            try await terminal.waitFor("e-mail> half typed")
            server.server.shutdown()
            try await terminal.waitFor("-- Connection lost.")
            #expect(try await terminal.exitStatus() == 1)
            let screen = try terminal.screen()
            #expect(screen.contains("*** Server is shutting down ***"))
            // What was typed is still on the screen once the client has gone.
            #expect(screen.contains("-- Not sent: half typed"), "\(screen)")
        }
    }

    @Test(.enabled(if: TerminalSession.tmux != nil, "tmux is not installed"))
    func withReconnectItTriesAgainUntilTheUserGivesUp() async throws {
        // A real server process, so that stopping it closes its port at once.
        let server = try ServerProcess.start(environment: ["TCP_PORT": "0", "BIND_ADDRESS": "127.0.0.1"])
        defer { server.kill() }
        let port = try await server.waitForPort()
        let terminal = try TerminalSession("\(try Self.terminalClient) --reconnect 127.0.0.1:\(port)")
        defer { terminal.close() }
        try await terminal.waitFor("e-mail>")
        server.terminate()
        try await terminal.waitFor("-- Connecting again in 1 s; Ctrl-C or Ctrl-D gives up.")
        // Nothing listens any more: the next pause is longer.
        try await terminal.waitFor("-- Cannot connect to 127.0.0.1:\(port): connection refused")
        try await terminal.waitFor("-- Connecting again in 2 s; Ctrl-C or Ctrl-D gives up.")
        try terminal.press("C-c")
        #expect(try await terminal.exitStatus() == 1)
    }

    /// A proxy whose server just died accepts and closes without a word until its health
    /// check notices: after a server has greeted, `--reconnect` tries again through that; a
    /// silent close on the first try is still a mistake said in words.
    @Test(.enabled(if: TerminalSession.tmux != nil, "tmux is not installed"))
    func withReconnectASilentCloseIsRetriedOnceTheServerHasGreeted() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        func silentListener(port: Int) async throws -> any Channel {
            try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(SayOnceAndHangUp(""))
                    }
                }
                .bind(host: "127.0.0.1", port: port).get()
        }

        let silent = try await silentListener(port: 0)
        let silentPort = try #require(silent.localAddress?.port)
        let first = try TerminalSession("\(try Self.terminalClient) --reconnect 127.0.0.1:\(silentPort)")
        defer { first.close() }
        // (Long lines wrap on the terminal: the waits look for their beginnings.)
        try await first.waitFor("-- Cannot chat with 127.0.0.1:\(silentPort): the server closed the connection without")
        #expect(try await first.exitStatus() == 1)
        #expect(!(try first.screen()).contains("Connecting again"))
        try await silent.close()

        var server = try ServerProcess.start(environment: ["TCP_PORT": "0", "BIND_ADDRESS": "127.0.0.1"])
        defer { server.kill() }
        let port = try await server.waitForPort()
        let terminal = try TerminalSession("\(try Self.terminalClient) --reconnect 127.0.0.1:\(port)")
        defer { terminal.close() }
        try await terminal.waitFor("e-mail>")
        server.kill()
        _ = try await server.waitForExit(timeout: .seconds(10))
        let proxy = try await silentListener(port: port)
        let lost = "-- Connection lost: the server closed the connection without a word"
        try await terminal.waitFor(lost, timeout: .seconds(15))
        try await proxy.close()
        server = try ServerProcess.start(environment: ["TCP_PORT": "\(port)", "BIND_ADDRESS": "127.0.0.1"])
        _ = try await server.waitForPort()
        var screen = ""
        let greetedAgain = try await poll(timeout: .seconds(20)) {
            screen = try terminal.screen()
            guard let silence = screen.range(of: lost, options: .backwards) else { return false }
            return screen[silence.upperBound...].contains("*** Welcome to TCP Chat Server! ***")
        }
        #expect(greetedAgain, "\(screen)")
        #expect(!screen.contains("Cannot chat with"), "\(screen)")
        try terminal.type("/quit")
        try terminal.press("Enter")
        #expect(try await terminal.exitStatus() == 0)
    }

    /// Logs alice in on the terminal (the code from `mail`) and takes her to `#den`.
    private func logInAliceIntoDen(_ terminal: TerminalSession, mail: MailFolder) async throws {
        try await terminal.waitFor("e-mail>")
        try terminal.type("alice@example.com")
        try terminal.press("Enter")
        try await terminal.waitFor("code>")
        try terminal.type(try await mail.code(for: "alice@example.com", mailIndex: 0))
        try terminal.press("Enter")
        try await terminal.waitFor("username>")
        try terminal.type("alice")
        try terminal.press("Enter")
        try await terminal.waitFor("#general>")
        try terminal.type("/join #den")
        try terminal.press("Enter")
        try await terminal.waitFor("#den>")
    }

    @Test(.enabled(if: TerminalSession.tmux != nil, "tmux is not installed"))
    func itStaysSignedInAcrossAServerKilledAndRestarted() async throws {
        let mail = try MailFolder.makeTemporary()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString)")
        defer {
            mail.remove()
            try? FileManager.default.removeItem(at: folder)
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let port = try freeLoopbackPort()
        let environment = [
            "TCP_PORT": "\(port)", "BIND_ADDRESS": "127.0.0.1", "MAIL_TRANSPORT": "file", "MAIL_DIR": mail.path,
            "DATA_DIR": folder.appendingPathComponent("data").path,
        ]
        var server = try ServerProcess.start(environment: environment)
        defer { server.kill() }
        _ = try await server.waitForPort()
        let state = folder.appendingPathComponent("state").path
        let terminal = try TerminalSession(
            "XDG_STATE_HOME=\(state) \(try Self.client) --reconnect 127.0.0.1:\(port)")
        defer { terminal.close() }
        try await logInAliceIntoDen(terminal, mail: mail)

        // The client asked for a token on its own, showed no line of it, and keeps it for
        // this server only, readable by the user alone.
        let file = "\(state)/chat-client/127.0.0.1_\(port).token"
        let kept = try await poll(timeout: .seconds(10)) { FileManager.default.fileExists(atPath: file) }
        #expect(kept)
        let token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(token.count == 43)
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let folderMode =
            try FileManager.default.attributesOfItem(atPath: "\(state)/chat-client")[.posixPermissions] as? Int
        #expect(folderMode == 0o700)
        #expect(!(try terminal.screen()).contains("Resume token"))

        // The server dies and comes back: the client is back in #den as alice, no key typed.
        let killed = ContinuousClock.now
        server.kill()
        _ = try await server.waitForExit(timeout: .seconds(10))
        server = try ServerProcess.start(environment: environment)
        _ = try await server.waitForPort()
        let screen = try await terminal.waitFor("*** Welcome back, alice! ***", timeout: .seconds(20))
        try await terminal.waitFor("#den>")
        let back = ContinuousClock.now - killed
        #expect(screen.contains("-- Signing in with the token kept for this server..."), "\(screen)")
        #expect(!screen.contains(token))
        #expect(mail.mails(for: "alice@example.com").count == 1)
        print("chat-client: back in #den \(back) after the server was killed")

        // /logout forgets the kept token and leaves.
        try terminal.type("/logout")
        try terminal.press("Enter")
        #expect(try await terminal.exitStatus() == 0)
        #expect(!FileManager.default.fileExists(atPath: file))
        server.terminate()
        _ = try await server.waitForExit(timeout: .seconds(20))
    }

    /// Issue "Stay signed in"'s scenario: two nodes behind HAProxy (PROXY protocol v2, health
    /// checks on `/health`), the node the client is on killed.
    @Test(.enabled(if: TerminalSession.tmux != nil, "tmux is not installed"))
    func aKilledClusterNodesClientIsBackInItsRoomThroughTheProxy() async throws {
        let proxied = ["PROXY_PROTOCOL": "on", "TRUSTED_PROXIES": "127.0.0.1/32", "METRICS_PORT": "0"]
        try await TestCluster.run(nodes: 0) { cluster in
            for _ in 0..<2 { _ = try await cluster.addNode(environment: proxied) }
            var backends: [(port: Int, healthCheckPort: Int?)] = []
            for (index, node) in cluster.nodes.enumerated() {
                let metrics = try await node.waitForLog(#"port=(\d+) \[ChatServer\] Serving metrics"#)
                backends.append((cluster.ports[index], Int(metrics)))
            }
            let haproxy = try await HAProxy.startListening(backends: backends, mode: "send-proxy-v2")
            defer { haproxy.stop() }
            // Both in rotation before anyone connects: a node whose first health check has not
            // passed gets nobody.
            for node in ["node1", "node2"] {
                #expect(try await haproxy.waitForServerStatus("UP", of: node) == "UP")
            }
            let state = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: state) }
            let terminal = try TerminalSession(
                "XDG_STATE_HOME=\(state.path) \(try Self.client) --reconnect 127.0.0.1:\(haproxy.port)")
            defer { terminal.close() }
            try await logInAliceIntoDen(terminal, mail: cluster.mail)
            let kept = try await poll(timeout: .seconds(10)) {
                FileManager.default.fileExists(atPath: "\(state.path)/chat-client/127.0.0.1_\(haproxy.port).token")
            }
            #expect(kept)
            // Someone watches from the other node. The proxy does not always alternate (twice
            // under ThreadSanitizer alice and the watcher landed on one node, and the watcher
            // went with it): whoever lands on alice's node leaves, and another logs in (four
            // at most).
            let home = try #require(cluster.nodes.firstIndex { $0.log.contains("user=alice") })
            var watcher: TestClient?
            for attempt in 0..<4 where watcher == nil {
                let name = "bob\(attempt)"
                let candidate = try await cluster.login(name, port: haproxy.port, from: "127.0.0.\(3 + attempt)")
                let line = "user=\(name) [ChatServer] User logged in"
                let landed = try await poll(every: .milliseconds(20), timeout: .seconds(5)) {
                    cluster.nodes.firstIndex { $0.log.contains(line) }
                }
                if let landed, landed != home {
                    watcher = candidate
                } else {
                    await candidate.close()
                }
            }
            let bob = try #require(watcher, "every watcher landed on alice's node")
            try await bob.send("/join #den")
            try await bob.readUntil("*** You joined #den ***")

            // Kill the node alice is on; the proxy's health check takes it out of rotation.
            let killed = ContinuousClock.now
            cluster.nodes[home].kill()
            let screen = try await terminal.waitFor("*** Welcome back, alice! ***", timeout: .seconds(20))
            try await terminal.waitFor("#den>")
            let back = ContinuousClock.now - killed
            #expect(screen.contains("-- Signing in with the token kept for this server..."), "\(screen)")
            // The other node still counted the dead connection against the address: the
            // resume got past that, and replaced the session long before the node's timeout
            // (10 s) would have released it.
            #expect(screen.contains("ERROR: IP address 127.0.0.1 already has an active connection"), "\(screen)")
            #expect(back < .seconds(8), "back after \(back)")
            try await bob.readUntil("*** alice joined the room ***")
            try terminal.type("made it")
            try terminal.press("Enter")
            try await bob.readUntil("[alice]: made it")
            #expect(cluster.mail.mails(for: "alice@example.com").count == 1)
            print("chat-client behind HAProxy: back in #den \(back) after its node was killed")
            await bob.close()
        }
    }

    /// Runs the client with `arguments` and `input` (none: an empty input) piped; returns
    /// its exit status and output.
    private func runClient(_ arguments: [String], input: String? = nil) async throws -> (status: Int32, output: String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.client)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let pipe = Pipe()
        if input != nil { process.standardInput = pipe } else { process.standardInput = FileHandle.nullDevice }
        try process.run()
        if let input {
            pipe.fileHandleForWriting.write(Data(input.utf8))
            try? pipe.fileHandleForWriting.close()
        }
        #expect(try await poll(timeout: .seconds(10)) { !process.isRunning })
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, text)
    }

    /// What a server sends is shown without what could control the terminal: a client does
    /// not trust a server with it.
    @Test func whatTheServerSendsIsShownWithoutControlSequences() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        SayOnceAndHangUp("*** hi ***\n\u{1B}]0;owned\u{07}\u{1B}[31mred\u{1B}[0m\u{08}\n"))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        let result = try await runClient(["127.0.0.1:\(port)"], input: "")
        try await listener.close()
        try await group.shutdownGracefully()
        #expect(result.output.hasPrefix("*** hi ***\nred\n"), "\(result.output.debugDescription)")
        #expect(!result.output.contains("\u{1B}") && !result.output.contains("\u{07}"))
    }

    /// A certificate the client does not trust, a CA file that is missing or not PEM, and a
    /// TLS port without --tls: each is said in words, and the client exits non-zero.
    @Test func tlsMistakesAreSaidInWords() async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        try await withTestServer(configure: { configuration in
            configuration.tls = TLSSettings(
                port: 0, certificateFile: certificates.serverCertificatePath, keyFile: certificates.serverKeyPath)
        }) { server in
            let tlsPort = try #require(server.tlsPort)
            let untrusted = try await runClient(["--tls", "localhost:\(tlsPort)"])
            #expect(untrusted.status == 1)
            #expect(
                untrusted.output
                    == "chat-client: cannot chat with localhost:\(tlsPort): the server's certificate is not trusted for localhost: if the server uses a CA of its own, give its certificate with --ca-file FILE (--insecure skips the check: for testing only)\n"
            )

            let missing = try await runClient(["--tls", "--ca-file", "/nonexistent/ca.pem", "localhost:\(tlsPort)"])
            #expect(missing.status == 1)
            #expect(missing.output == "chat-client: --ca-file /nonexistent/ca.pem: no such file\n")
            let key = try await runClient(["--tls", "--ca-file", certificates.serverKeyPath, "localhost:\(tlsPort)"])
            #expect(key.status == 1)
            #expect(key.output.hasSuffix(": not a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)\n"))
            let text = FileManager.default.temporaryDirectory.appendingPathComponent(
                "not-a-ca-\(UUID().uuidString).txt")
            try Data("hello\n".utf8).write(to: text)
            defer { try? FileManager.default.removeItem(at: text) }
            let garbage = try await runClient(["--tls", "--ca-file", text.path, "localhost:\(tlsPort)"])
            #expect(garbage.status == 1)
            #expect(
                garbage.output
                    == "chat-client: --ca-file \(text.path): not a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)\n"
            )

            // Plain text to a TLS port: the server's alert is recognised, not shown.
            let spoken = try await runClient(["127.0.0.1:\(tlsPort)"], input: "alice@example.com\n")
            #expect(spoken.status == 1)
            #expect(
                spoken.output
                    == "chat-client: cannot chat with 127.0.0.1:\(tlsPort): the server at this port speaks TLS: use --tls\n"
            )
            // With nothing to send, the server hangs up without a word: not a success either.
            let silent = try await runClient(["127.0.0.1:\(tlsPort)"])
            #expect(silent.status == 1)
            #expect(silent.output.contains("use --tls"), "\(silent.output)")
        }
    }

    @Test func aTLSOptionWithoutTLSNamesTheOptionGiven() async throws {
        // The error line (the usage that follows it lists every option).
        func error(_ output: String) -> String? {
            output.split(separator: "\n").first { $0.hasPrefix("Error:") }.map(String.init)
        }
        let insecure = try await runClient(["--insecure", "127.0.0.1:1"])
        #expect(insecure.status != 0)
        #expect(error(insecure.output) == "Error: --insecure needs --tls")
        let caFile = try await runClient(["--ca-file", "/tmp/ca.pem", "127.0.0.1:1"])
        #expect(caFile.status != 0)
        #expect(error(caFile.output) == "Error: --ca-file needs --tls")
    }

    /// Run as people run it, without privileges (as `nobody` when the test runs as root):
    /// what a root process may set on a socket and an ordinary user may not (`SO_DEBUG`, the
    /// socket-level option numbered as `TCP_NODELAY` is) fails the connection.
    @Test func pipedItPassesLinesThroughPlainly() async throws {
        try await withTestServer { server in
            let process = Process()
            if let user = UnprivilegedRun.user {
                (process.executableURL, process.arguments) = try UnprivilegedRun.command(
                    try Self.client, arguments: ["127.0.0.1:\(server.port)"], as: user)
                process.environment = try UnprivilegedRun.environment(ProcessInfo.processInfo.environment)
            } else {
                process.executableURL = URL(fileURLWithPath: try Self.client)
                process.arguments = ["127.0.0.1:\(server.port)"]
            }
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("client-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let outputFile = folder.appendingPathComponent("out.txt")
            _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
            let output = try FileHandle(forWritingTo: outputFile)
            let input = Pipe()
            process.standardInput = input
            process.standardOutput = output
            process.standardError = output
            try process.run()
            try output.close()
            input.fileHandleForWriting.write(Data("not-an-address\n/quit\n".utf8))
            #expect(try await poll(timeout: .seconds(10)) { !process.isRunning })
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            let text = try String(contentsOf: outputFile, encoding: .utf8)
            #expect(
                text
                    == (ServerLine.welcome + [
                        ServerLine.verifyingEmail, UserError.invalidEmail.line, ServerLine.emailPrompt,
                        ServerLine.goodbye,
                    ]).map { $0 + "\n" }.joined())
            #expect(!text.contains("\u{1B}"))
        }
    }

    @Test(.enabled(if: TerminalSession.tmux != nil, "tmux is not installed"))
    func overTLSWithTheServersCA() async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        try await withTestServer(configure: { configuration in
            configuration.tls = TLSSettings(
                port: 0, certificateFile: certificates.serverCertificatePath, keyFile: certificates.serverKeyPath)
        }) { server in
            let tlsPort = try #require(server.tlsPort)
            let terminal = try TerminalSession(
                "\(try Self.terminalClient) --tls --ca-file \(certificates.caCertificatePath) localhost:\(tlsPort)")
            defer { terminal.close() }
            try await terminal.waitFor("with TLS")
            try await logIn(terminal, as: "alice", server: server)
            let bob = try await server.login("bob")
            try await bob.send("over plain TCP")
            try await terminal.waitFor("[bob]: over plain TCP")
        }
    }
}

/// A server that sends its bytes as it accepts a connection, then closes it.
private final class SayOnceAndHangUp: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let bytes: String

    init(_ bytes: String) { self.bytes = bytes }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(ByteBuffer(string: bytes))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
