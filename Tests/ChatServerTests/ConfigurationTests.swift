import ChatCore
import Foundation
import Testing

@testable import ChatServer

@Suite struct ConfigurationTests {
    private func withEnvFile<T>(_ contents: String, _ body: (String) async throws -> T) async throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chat-\(UUID().uuidString).env").path
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path)
    }

    @Test func defaults() async throws {
        let configuration = try await ServerConfiguration.load(
            flags: [:], environmentFile: "/nonexistent/.env", environment: [:])
        #expect(configuration.port == 8888)
        #expect(configuration.otpExpirationMinutes == 5)
        #expect(configuration.otpMaxRetries == 3)
        #expect(configuration.usernameRules.minimumLength == 3)
        #expect(configuration.usernameRules.maximumLength == 16)
        #expect(configuration.maxConnectionsPerIP == 1)
        #expect(configuration.maxLineBytes == 4096)
        #expect(configuration.mailTransport == .log)
    }

    @Test func priorityIsDefaultsThenFileThenEnvironmentThenFlags() async throws {
        try await withEnvFile("TCP_PORT=1001\nOTP_MAX_RETRIES=7\nUSERNAME_MAX_LENGTH=20\nMAX_LINE_BYTES=2048\n") { path in
            let configuration = try await ServerConfiguration.load(
                flags: [.tcpPort: "1003"],
                environmentFile: path,
                environment: ["TCP_PORT": "1002", "OTP_MAX_RETRIES": "8"]
            )
            #expect(configuration.port == 1003)  // flag beats environment and file
            #expect(configuration.otpMaxRetries == 8)  // environment beats file
            #expect(configuration.usernameRules.maximumLength == 20)  // file beats default
            #expect(configuration.maxLineBytes == 2048)
            #expect(configuration.historySize == 100)  // default
        }
    }

    @Test func theSeedsEnvFileWorksWithoutSMTPWhenTransportIsChosen() async throws {
        try await withEnvFile("MAIL_TRANSPORT=file\nMAIL_DIR=/tmp/x\nOTP_EXPIRATION_MINUTES=10\n") { path in
            let configuration = try await ServerConfiguration.load(flags: [:], environmentFile: path, environment: [:])
            #expect(configuration.mailTransport == .file(directory: "/tmp/x"))
            #expect(configuration.otpExpirationMinutes == 10)
        }
    }

    @Test(arguments: [
        (Setting.tcpPort, "eighty"), (.tcpPort, "70000"), (.otpMaxRetries, "0"), (.usernameMinLength, "-1"),
        (.maxLineBytes, "10"), (.logLevel, "loud"), (.mailTransport, "pigeon"), (.maxConnectionsPerIP, "0"),
    ])
    func anInvalidValueNamesTheSetting(setting: Setting, value: String) async throws {
        await #expect {
            try await ServerConfiguration.load(flags: [:], environmentFile: "/none", environment: [setting.name: value])
        } throws: { error in
            (error as? ConfigurationError)?.setting == setting
                && "\(error)".hasPrefix("Invalid setting \(setting.name): ")
        }
    }

    @Test func usernameBoundsMustBeOrdered() async throws {
        await #expect(throws: ConfigurationError.self) {
            try await ServerConfiguration.load(
                flags: [:], environmentFile: "/none",
                environment: ["USERNAME_MIN_LENGTH": "10", "USERNAME_MAX_LENGTH": "5"])
        }
    }

    @Test func theSMTPPasswordIsNeverPrinted() async throws {
        do {
            _ = try await ServerConfiguration.load(
                flags: [:], environmentFile: "/none",
                environment: ["SMTP_HOST": "smtp.example.com", "SMTP_PASSWORD": "hunter2-secret"])
            Issue.record("SMTP_HOST without an SMTP transport must stop start-up")
        } catch {
            #expect("\(error)".contains("SMTP_HOST"))
            #expect(!"\(error)".contains("hunter2-secret"))
        }
    }

    @Test func aNamedEnvFileMustExist() async throws {
        await #expect(throws: ServerConfiguration.EnvironmentFileError.self) {
            try await ServerConfiguration.load(
                flags: [:], environmentFile: "/nonexistent/chat.env", requireEnvironmentFile: true, environment: [:])
        }
    }
}
