import ArgumentParser
import ChatClientCore
import Foundation
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// `chat-client`: a terminal client for the chat server.
@main
struct ChatClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-client",
        abstract: "A terminal client for swift-tcp-chat.",
        discussion: """
            On a terminal: incoming lines scroll above the line you type, which stays intact. \
            Left/Right, Home/End (Ctrl-A/E), Ctrl-W deletes a word, Ctrl-U the line before the cursor, \
            Up/Down recall sent lines, Tab completes commands and names, Ctrl-C clears the line, \
            Ctrl-D or /quit leaves. When standard input or output is not a terminal, lines pass \
            through plainly, for scripts.
            """,
        version: "chat-client \(ClientVersion.current)"
    )

    @Argument(help: "The server, host[:port] (default: $CHAT_SERVER, else localhost:8888).")
    var server: String?

    @Flag(help: "Connect with TLS (the server's TLS_PORT).") var tls = false
    @Option(help: "With --tls: PEM file of the CA that signed the server's certificate (default: the system's).")
    var caFile: String?
    @Flag(
        help: "With --tls: do not verify the server's certificate (anyone on the way can read and change everything).")
    var insecure = false
    @Flag(help: "No colours (also when NO_COLOR is set).") var noColor = false
    @Flag(help: "When the connection is lost, connect again (with growing pauses) instead of exiting.")
    var reconnect = false
    @Flag(
        help: """
            Do not stay signed in: keep no resume token (by default one is kept per server in             $XDG_STATE_HOME/chat-client/, mode 0600, and used at start and on every reconnect).
            """)
    var noRemember = false

    func validate() throws {
        if !tls {
            // Names the option given, not a list the user has to match against.
            if caFile != nil { throw ValidationError("--ca-file needs --tls") }
            if insecure { throw ValidationError("--insecure needs --tls") }
        }
        if caFile != nil && insecure { throw ValidationError("--ca-file and --insecure exclude each other") }
        _ = try endpoint()
    }

    func endpoint() throws -> ServerEndpoint {
        let text = server ?? ProcessInfo.processInfo.environment["CHAT_SERVER"] ?? "localhost:8888"
        guard let endpoint = ServerEndpoint(text) else {
            throw ValidationError("'\(text)' is not host[:port] (e.g. chat.example.com:8888 or [::1]:8888)")
        }
        return endpoint
    }

    func run() async throws {
        let interactive = isatty(0) == 1 && isatty(1) == 1
        let noColorEnvironment = ProcessInfo.processInfo.environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        var trustRoots: [NIOSSLCertificate]?
        if let caFile {
            do {
                trustRoots = try ClientOptions.TLS.trustRoots(inFile: caFile)
            } catch {
                Output.error(error.message)
                Glibc.exit(1)
            }
        }
        let options = ClientOptions(
            endpoint: try endpoint(),
            tls: tls ? .init(trustRoots: trustRoots, verify: !insecure) : nil,
            colors: interactive && !noColor && !noColorEnvironment,
            reconnect: reconnect, remember: !noRemember)
        if insecure {
            FileHandle.standardError.write(
                Data(
                    "chat-client: WARNING: --insecure: the server's certificate is not checked; anyone between you and the server can read and change everything, your login code included.\n"
                        .utf8))
        }
        let code: Int32
        if interactive {
            code = try await InteractiveClient(options: options).run()
        } else {
            code = try await PlainClient(options: options).run()
        }
        // Exit here: the thread reading standard input is blocked in read(2), and nothing
        // may keep the process from ending once the session is over.
        Glibc.exit(code)
    }
}

enum ClientVersion {
    static let current = "1.0.0"
}
