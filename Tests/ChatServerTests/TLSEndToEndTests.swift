import ChatCore
import ChatTestSupport
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `chat-server` executable with a TLS listener, a real `openssl s_client` (Debian's
/// `openssl`) as one user and plain TCP as the other; SIGHUP swaps the certificate.
@Suite(.serialized) struct TLSEndToEndTests {
    @Test func openSSLClientChatsWithAPlainUserAndSIGHUPReloadsTheCertificate() async throws {
        let mail = try MailFolder.makeTemporary()
        let first = try TestCertificates.mint(commonName: "first CA")
        let second = try TestCertificates.mint(commonName: "second CA")
        defer {
            mail.remove()
            first.remove()
            second.remove()
        }
        let server = try ServerProcess.start(environment: [
            "MAIL_TRANSPORT": "file", "MAIL_DIR": mail.path, "BIND_ADDRESS": "127.0.0.1", "LOG_LEVEL": "info",
            "TCP_PORT": "0", "TLS_PORT": "0", "MAX_CONNECTIONS_PER_IP": "3",  // openssl clients all come from 127.0.0.1
            "TLS_CERT_FILE": first.serverCertificatePath, "TLS_KEY_FILE": first.serverKeyPath,
        ])
        defer { server.kill() }
        let tcpPort = Int(try await server.waitForLog(#"listener=tcp mail_transport=\S+ port=(\d+)"#))!
        let tlsPort = Int(try await server.waitForLog(#"listener=tls mail_transport=\S+ port=(\d+)"#))!

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let outcome = await runWithTimeLimit(.seconds(90)) {
            let alice = try OpenSSLClient.start(port: tlsPort, caFile: first.caCertificatePath)
            defer { alice.stop() }
            try await alice.readUntil("*** Enter your email address below ***")
            try alice.send("alice@example.com")
            try await alice.readUntil("*** Enter OTP code: ***")
            try alice.send(try await mail.code(for: "alice@example.com", mailIndex: 0))
            try await alice.readUntil("*** OTP verified successfully! ***")
            try alice.send("alice")
            try await alice.readUntil("*** Type /help for available commands. ***")

            let bob = try await EndToEndTests.login("bob", port: tcpPort, from: "127.0.0.3", mail: mail, group: group)
            try await alice.readUntil("*** bob joined the room ***")
            try await bob.send("hi from plain TCP")
            try await alice.readUntil("[bob]: hi from plain TCP")
            try alice.send("hi from openssl")
            try await bob.readUntil("[alice]: hi from openssl")

            // A renewed certificate from another CA, then SIGHUP.
            for (from, to) in [
                (second.serverCertificatePath, first.serverCertificatePath),
                (second.serverKeyPath, first.serverKeyPath),
            ] {
                try Data(contentsOf: URL(fileURLWithPath: from)).write(to: URL(fileURLWithPath: to))
            }
            server.hangUp()
            _ = try await server.waitForLog("(TLS certificate reloaded)")
            // A client that trusts only the new CA connects; one that trusts only the old does not.
            let renewed = try OpenSSLClient.start(port: tlsPort, caFile: second.caCertificatePath)
            defer { renewed.stop() }
            try await renewed.readUntil("*** Enter your email address below ***")
            let stale = try OpenSSLClient.start(port: tlsPort, caFile: first.caCertificatePath)
            defer { stale.stop() }
            #expect(try await stale.waitForExit() != 0)
            #expect(stale.lines.isEmpty)
            // The TLS connection made before the reload keeps chatting.
            try alice.send("still here after the reload")
            try await bob.readUntil("[alice]: still here after the reload")
        }
        try await group.shutdownGracefully()
        try outcome.get()
        server.terminate()
        #expect(try await server.waitForExit(timeout: .seconds(20)) == 0)
    }

    @Test func aKeyThatDoesNotMatchStopsStartUpNamingTheSetting() async throws {
        let good = try TestCertificates.mint()
        let other = try TestCertificates.mint()
        defer {
            good.remove()
            other.remove()
        }
        let server = try ServerProcess.start(environment: [
            "TLS_PORT": "0", "TLS_CERT_FILE": good.serverCertificatePath, "TLS_KEY_FILE": other.serverKeyPath,
        ])
        defer { server.kill() }
        #expect(try await server.waitForExit(timeout: .seconds(20)) == 2)
        #expect(server.log.contains("Invalid setting TLS_KEY_FILE"))
        #expect(server.log.contains("does not match the certificate in TLS_CERT_FILE"))
        // Nothing is logged before every setting is known to be valid.
        #expect(!server.log.contains("OTP mails are") && !server.log.contains("DEVELOPMENT MAIL"), "\(server.log)")
    }
}

/// `openssl s_client` verifying the server against one CA, as a user typing into it.
///
/// Its input is a FIFO and its output a file: no `Pipe` readability handler, which would
/// tie up one of the threads Swift concurrency also runs on.
final class OpenSSLClient: Sendable {
    private let process: Process
    private let input: FileHandle
    private let outputPath: String

    private init(process: Process, input: FileHandle, outputPath: String) {
        self.process = process
        self.input = input
        self.outputPath = outputPath
    }

    static func start(port: Int, caFile: String) throws -> OpenSSLClient {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("s_client-\(UUID().uuidString)").path
        // The FIFO is opened read-write, so neither side waits for the other to open it.
        guard mkfifo(base + ".in", 0o600) == 0, let input = FileHandle(forUpdatingAtPath: base + ".in"),
            FileManager.default.createFile(atPath: base + ".out", contents: nil),
            let output = FileHandle(forWritingAtPath: base + ".out")
        else { throw TestFailure("cannot make openssl's input and output files") }
        try? FileManager.default.removeItem(atPath: base + ".in")  // both ends are open
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost", "-verify_hostname", "localhost",
            "-CAfile", caFile, "-verify_return_error", "-quiet", "-ign_eof", "-nocommands",
        ]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        try? output.close()
        return OpenSSLClient(process: process, input: input, outputPath: base + ".out")
    }

    /// What the server sent so far, line by line.
    var lines: [String] {
        ((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func send(_ line: String) throws {
        try input.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Waits (bounded) until the line has arrived.
    func readUntil(_ line: String, timeout: Duration = .seconds(15)) async throws {
        guard try await poll(timeout: timeout, until: { lines.contains(line) }) else {
            throw TestFailure("openssl never got '\(line)': \(lines)")
        }
    }

    /// Waits (bounded, without blocking a thread) until openssl has exited.
    func waitForExit(timeout: Duration = .seconds(15)) async throws -> Int32 {
        guard try await poll(timeout: timeout, until: { !process.isRunning }) else {
            throw TestFailure("openssl s_client did not exit")
        }
        return process.terminationStatus
    }

    /// Ends openssl (SIGKILL: nothing to flush) and removes its output file.
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? input.close()
        try? FileManager.default.removeItem(atPath: outputPath)
    }
}
