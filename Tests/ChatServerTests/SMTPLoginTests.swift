import ChatCore
import ChatMail
import ChatTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import ChatServer

/// Logging in with codes that travel through a real SMTP server (aiosmtpd).
@Suite(.serialized) struct SMTPLoginTests {
    static let user = "chat@example.com"
    static let password = "app-password-123"

    /// The 6-digit code in a received message's plain-text part.
    static func code(in message: String) throws -> String {
        let range = try #require(message.range(of: #"code is: \d{6}"#, options: .regularExpression))
        return String(message[range].suffix(6))
    }

    static func settings(
        _ server: SMTPTestServer, _ certificates: TestCertificates, password: String = password
    )
        -> SMTPSettings
    {
        SMTPSettings(
            host: "localhost", port: server.port, security: .starttls, username: user, password: password,
            envelopeSender: user, caFile: certificates.caCertificatePath, stepTimeout: .seconds(2))
    }

    @Test func aUserLogsInWithTheCodeFromTheirMailbox() async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        let smtp = try await SMTPTestServer.start(
            mode: .starttls, certificates: certificates, user: Self.user, password: Self.password)
        let mailer = try SMTPMailer(settings: Self.settings(smtp, certificates))
        let outcome = await runWithTimeLimit(.seconds(60)) {
            try await withTestServer(mailer: mailer) { server in
                let client = try await server.connectAndGreet()
                try await client.send("alice@example.com")
                try await client.readUntil("*** Enter OTP code: ***")
                let message = try #require(try await smtp.waitForMessages(1).first)
                #expect(message.recipients == ["alice@example.com"])
                #expect(message.encrypted && message.authenticated)
                try await client.send(try Self.code(in: message.data))
                #expect(try await client.readLine() == "*** OTP verified successfully! ***")
            }
        }
        await smtp.stop()
        try outcome.get()
    }

    enum Failure: String, CaseIterable, Sendable {
        case wrongPassword, rejectedRecipient, droppedInData, neverAnswers, noSTARTTLS, untrustedCertificate
    }

    @Test(arguments: Failure.allCases)
    func aMailFailureIsReportedAndLeavesTheServerHealthy(_ failure: Failure) async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        let otherCA = try TestCertificates.mint(commonName: "untrusted CA")
        defer { otherCA.remove() }
        let behavior: SMTPTestServer.Behavior =
            switch failure {
            case .rejectedRecipient: .rejectRecipient
            case .droppedInData: .dropInData
            case .neverAnswers: .hang
            default: .normal
            }
        let smtp = try await SMTPTestServer.start(
            mode: failure == .noSTARTTLS ? .plain : .starttls, certificates: certificates,
            user: Self.user, password: Self.password, behavior: behavior)
        var settings = Self.settings(smtp, failure == .untrustedCertificate ? otherCA : certificates)
        if failure == .wrongPassword { settings.password = "wrong-password" }
        let mailer = try SMTPMailer(settings: settings)

        let outcome = await runWithTimeLimit(.seconds(60)) {
            try await withTestServer(mailer: mailer) { server in
                let client = try await server.connectAndGreet()
                for _ in 0..<2 {
                    try await client.send("alice@example.com")
                    #expect(
                        try await client.readLines(3, timeout: .seconds(20)) == [
                            "*** Please wait while we verify your email address... ***",
                            "ERROR: Failed to send OTP. Please try again later.",
                            "*** Enter your email address below ***",
                        ])
                    // No code is left behind.
                    #expect(server.server.occupancy.pendingCodes == 0)
                }
                // Everyone else is unaffected.
                let other = try await server.connectAndGreet()
                try await other.send("/quit")
                #expect(try await other.waitForClose() == ["*** Goodbye! ***"])
            }
        }
        await smtp.stop()
        try outcome.get()
        #expect(try smtp.received().isEmpty || failure == .droppedInData)
    }
}
