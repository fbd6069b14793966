import Foundation
import NIOConcurrencyHelpers

/// The aiosmtpd-based SMTP server of `Tests/Fixtures/smtp_server.py`, as a child process
/// on an ephemeral loopback port. Whatever a test starts, it stops.
public final class SMTPTestServer: Sendable {
    public enum Mode: String, Sendable { case plain, starttls, tls }
    public enum Behavior: String, Sendable {
        case normal
        case rejectRecipient = "reject-rcpt"
        case dropInData = "drop-in-data"
        case hang
    }

    /// One message the server accepted.
    public struct Received: Sendable {
        public let data: String
        public let mailFrom: String
        public let recipients: [String]
        public let authenticated: Bool
        public let encrypted: Bool
    }

    public let port: Int
    public let folder: String
    private let process: Process
    private let output: ProcessOutput

    private init(port: Int, folder: String, process: Process, output: ProcessOutput) {
        self.port = port
        self.folder = folder
        self.process = process
        self.output = output
    }

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/smtp_server.py").path
    }

    public static func start(
        mode: Mode = .plain,
        certificates: TestCertificates? = nil,
        user: String? = nil,
        password: String? = nil,
        mechanisms: String = "PLAIN,LOGIN",
        behavior: Behavior = .normal
    ) async throws -> SMTPTestServer {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("chat-smtp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var arguments = [
            "python3", script, "--mode", mode.rawValue, "--out", folder, "--behavior", behavior.rawValue,
            "--mechanisms", mechanisms,
        ]
        if let certificates {
            arguments += ["--cert", certificates.serverCertificatePath, "--key", certificates.serverKeyPath]
        }
        if let user, let password { arguments += ["--user", user, "--password", password] }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = ProcessOutput(pipe)
        try process.run()

        let listening = try await poll(every: .milliseconds(20), timeout: .seconds(30)) { () -> Int?? in
            let text = output.text
            if let range = text.range(of: #"READY (\d+)"#, options: .regularExpression),
                let port = Int(text[range].dropFirst(6))
            {
                return port
            }
            return process.isRunning ? nil : .some(nil)
        }
        if let port = listening ?? nil {
            return SMTPTestServer(port: port, folder: folder, process: process, output: output)
        }
        process.terminate()
        let text = output.text
        throw SMTPServerFailure("the SMTP test server did not start (is aiosmtpd installed?): \(text)")
    }

    /// Everything the server printed (its log).
    public var log: String { output.text }

    /// The messages accepted so far, in order.
    public func received() throws -> [Received] {
        var messages: [Received] = []
        for index in 1... {
            let base = folder + "/\(index)"
            guard FileManager.default.fileExists(atPath: base + ".eml") else { break }
            let data = try String(contentsOfFile: base + ".eml", encoding: .utf8)
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + ".json")))
            let fields = json as? [String: Any] ?? [:]
            messages.append(
                Received(
                    data: data,
                    mailFrom: fields["mail_from"] as? String ?? "",
                    recipients: fields["rcpt_tos"] as? [String] ?? [],
                    authenticated: fields["authenticated"] as? Bool ?? false,
                    encrypted: fields["encrypted"] as? Bool ?? false
                ))
        }
        return messages
    }

    /// Waits (bounded) until `count` messages have arrived.
    public func waitForMessages(_ count: Int, timeout: Duration = .seconds(20)) async throws -> [Received] {
        let messages = try await poll(every: .milliseconds(20), timeout: timeout) { () throws -> [Received]? in
            let messages = try received()
            return messages.count >= count ? messages : nil
        }
        if let messages { return messages }
        throw SMTPServerFailure("expected \(count) message(s); server log: \(log)")
    }

    /// Terminates the server and waits (bounded) for it to go; kills it if it lingers.
    public func stop() async {
        if process.isRunning {
            process.terminate()
            _ = try? await poll(timeout: .seconds(5)) { !process.isRunning }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: folder)
    }
}

public struct SMTPServerFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Collects what a child process writes to a pipe.
public final class ProcessOutput: Sendable {
    private let buffer = NIOLockedValueBox("")

    public init(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [buffer = self] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
            } else {
                buffer.append(String(decoding: data, as: UTF8.self))
            }
        }
    }

    private func append(_ text: String) { buffer.withLockedValue { $0 += text } }

    public var text: String { buffer.withLockedValue { $0 } }
}
