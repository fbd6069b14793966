import ChatMail
import ChatTestSupport
import Foundation
import Testing

@testable import ChatServer

/// What `deploy/` ships, checked with the tools an operator would use.
struct DeploymentTests {
    private static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("deploy")

    private static let systemdAnalyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// `systemd-analyze verify` on the unit, its `ExecStart` pointed at the chat-server just
    /// built (verify insists the program exists): no error and not a single warning.
    @Test(.enabled(if: systemdAnalyze != nil, "systemd-analyze is not installed (scripts/test.sh installs systemd)"))
    func theSystemdUnitVerifiesCleanly() throws {
        let unit = try String(contentsOf: Self.deploy.appendingPathComponent("chat-server.service"), encoding: .utf8)
        for option in [
            "DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "LimitNOFILE=65536",
            "ExecStart=/usr/local/bin/chat-server", "ExecReload=/bin/kill -HUP $MAINPID",
            "StateDirectory=chat-server", "Environment=DATA_DIR=/var/lib/chat-server/data",
        ] {
            #expect(unit.contains("\n\(option)\n"), "\(option)")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("chat-server.service")
        let binary = try ServerProcess.executable.path
        try unit.replacingOccurrences(of: "ExecStart=/usr/local/bin/chat-server", with: "ExecStart=\(binary)")
            .write(to: file, atomically: true, encoding: .utf8)

        let outputFile = folder.appendingPathComponent("verify.txt")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.systemdAnalyze!)
        process.arguments = ["verify", file.path]
        process.standardOutput = output
        process.standardError = output
        try process.run()
        process.waitUntilExit()
        try output.close()
        let text = try String(contentsOf: outputFile, encoding: .utf8)
        #expect(process.terminationStatus == 0, "\(text)")
        // Unknown keys and bad values are only warnings to verify: there must be none.
        #expect(text.isEmpty, "\(text)")
    }

    /// The example settings file is a valid configuration as it stands.
    @Test func theExampleEnvFileIsValid() async throws {
        let configuration = try await ServerConfiguration.load(
            flags: [:], environmentFile: Self.deploy.appendingPathComponent("chat-server.env").path, environment: [:])
        #expect(configuration.port == 8888)
        #expect(configuration.metrics == MetricsSettings(host: "127.0.0.1", port: 9100))
        guard case .smtp(let smtp) = configuration.mailTransport else {
            Issue.record("the example selects SMTP")
            return
        }
        #expect(smtp.host == "smtp.example.com")
    }
}
