import ChatTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import ChatMail

/// The SMTP transport against a real SMTP server (aiosmtpd, `Tests/Fixtures/smtp_server.py`).
@Suite(.serialized) struct SMTPMailerTests {
    static let user = "chat@example.com"
    static let password = "app-password-123"
    let mail = OTPMail(recipient: "alice@example.com", code: "482913", validForMinutes: 7)

    private func settings(
        port: Int, security: SMTPSettings.Security, host: String = "localhost", caFile: String? = nil,
        password: String = SMTPMailerTests.password, stepTimeout: Duration = .seconds(5)
    ) -> SMTPSettings {
        SMTPSettings(
            host: host, port: port, security: security, username: Self.user, password: password,
            envelopeSender: Self.user, fromHeader: "TCP Chat <\(Self.user)>", caFile: caFile,
            stepTimeout: stepTimeout)
    }

    private func withServer(
        mode: SMTPTestServer.Mode = .plain,
        mechanisms: String = "PLAIN,LOGIN",
        behavior: SMTPTestServer.Behavior = .normal,
        _ body: (SMTPTestServer, TestCertificates) async throws -> Void
    ) async throws {
        let certificates = try TestCertificates.mint()
        defer { certificates.remove() }
        let server = try await SMTPTestServer.start(
            mode: mode, certificates: certificates, user: Self.user, password: Self.password,
            mechanisms: mechanisms, behavior: behavior)
        do {
            try await body(server, certificates)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test func plainAuthPlainToLoopback() async throws {
        try await withServer(mechanisms: "PLAIN") { server, _ in
            let mailer = try SMTPMailer(settings: settings(port: server.port, security: .none, host: "127.0.0.1"))
            try await mailer.send(mail)
            let received = try #require(try await server.waitForMessages(1).first)
            #expect(received.authenticated)
            #expect(!received.encrypted)
            #expect(received.mailFrom == Self.user)
            #expect(received.recipients == ["alice@example.com"])
            try expectWellFormed(received.data)
        }
    }

    @Test func authLoginWhenThatIsAllTheServerOffers() async throws {
        try await withServer(mechanisms: "LOGIN") { server, _ in
            let mailer = try SMTPMailer(settings: settings(port: server.port, security: .none, host: "127.0.0.1"))
            try await mailer.send(mail)
            #expect(try await server.waitForMessages(1).first?.authenticated == true)
        }
    }

    @Test func startTLSWithAPrivateCA() async throws {
        try await withServer(mode: .starttls) { server, certificates in
            let mailer = try SMTPMailer(
                settings: settings(port: server.port, security: .starttls, caFile: certificates.caCertificatePath))
            try await mailer.send(mail)
            let received = try #require(try await server.waitForMessages(1).first)
            #expect(received.encrypted)
            #expect(received.authenticated)
            try expectWellFormed(received.data)
        }
    }

    @Test func implicitTLS() async throws {
        try await withServer(mode: .tls) { server, certificates in
            let mailer = try SMTPMailer(
                settings: settings(port: server.port, security: .tls, caFile: certificates.caCertificatePath))
            try await mailer.send(mail)
            let received = try #require(try await server.waitForMessages(1).first)
            #expect(received.authenticated)
            try expectWellFormed(received.data)
        }
    }

    @Test func linesStartingWithADotSurvive() async throws {
        try await withServer { server, _ in
            let mailer = try SMTPMailer(settings: settings(port: server.port, security: .none, host: "127.0.0.1"))
            let session = mailer.makeSession()
            let data = "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n"
            try await session.run(sending: .init(sender: Self.user, recipient: "bob@example.com", data: data))
            let received = try #require(try await server.waitForMessages(1).first)
            #expect(received.data.contains("\r\n.leading dot\r\n..two dots\r\n.\r\nafter a lone dot"))
        }
    }

    @Test func aWrongPasswordIsReported() async throws {
        try await withServer { server, _ in
            let mailer = try SMTPMailer(
                settings: settings(port: server.port, security: .none, host: "127.0.0.1", password: "wrong"))
            await #expect {
                try await mailer.send(mail)
            } throws: { error in
                guard case .authenticationRejected(535, _) = error as? SMTPError else { return false }
                return !"\(error)".contains("wrong") && !"\(error)".contains(Self.password)
            }
            #expect(try server.received().isEmpty)
        }
    }

    @Test func aRejectedRecipientIsReported() async throws {
        try await withServer(behavior: .rejectRecipient) { server, _ in
            let mailer = try SMTPMailer(settings: settings(port: server.port, security: .none, host: "127.0.0.1"))
            await #expect {
                try await mailer.send(mail)
            } throws: { error in
                if case .unexpectedReply("RCPT TO", 550, _) = error as? SMTPError { return true }
                return false
            }
        }
    }

    @Test func aServerThatDropsTheConnectionInDataIsReported() async throws {
        try await withServer(behavior: .dropInData) { server, _ in
            let mailer = try SMTPMailer(settings: settings(port: server.port, security: .none, host: "127.0.0.1"))
            await #expect {
                try await mailer.send(mail)
            } throws: { error in
                if case .connectionClosed("end of DATA") = error as? SMTPError { return true }
                return false
            }
        }
    }

    @Test func aServerThatNeverAnswersTimesOut() async throws {
        try await withServer(behavior: .hang) { server, _ in
            let mailer = try SMTPMailer(
                settings: settings(
                    port: server.port, security: .none, host: "127.0.0.1", stepTimeout: .milliseconds(500)))
            let start = ContinuousClock.now
            await #expect(throws: SMTPError.timedOut(stage: "greeting")) {
                try await mailer.send(mail)
            }
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    @Test func startTLSRequiredButNotOfferedFails() async throws {
        try await withServer(mode: .plain) { server, certificates in
            let mailer = try SMTPMailer(
                settings: settings(port: server.port, security: .starttls, caFile: certificates.caCertificatePath))
            await #expect(throws: SMTPError.startTLSNotOffered) {
                try await mailer.send(mail)
            }
            #expect(try server.received().isEmpty)
        }
    }

    @Test func anUntrustedCertificateFails() async throws {
        let otherCA = try TestCertificates.mint(commonName: "someone else's CA")
        defer { otherCA.remove() }
        try await withServer(mode: .starttls) { server, _ in
            let mailer = try SMTPMailer(
                settings: settings(port: server.port, security: .starttls, caFile: otherCA.caCertificatePath))
            await #expect {
                try await mailer.send(mail)
            } throws: { error in
                if case .tlsFailed = error as? SMTPError { return true }
                return false
            }
            #expect(try server.received().isEmpty)
        }
    }

    @Test func checkAuthenticatesWithoutSendingMail() async throws {
        try await withServer(mode: .starttls) { server, certificates in
            let good = try SMTPMailer(
                settings: settings(port: server.port, security: .starttls, caFile: certificates.caCertificatePath))
            try await good.check()
            let bad = try SMTPMailer(
                settings: settings(
                    port: server.port, security: .starttls, caFile: certificates.caCertificatePath, password: "nope"))
            await #expect(throws: SMTPError.self) { try await bad.check() }
            #expect(try server.received().isEmpty)
        }
    }

    // MARK: Helpers

    /// The message parses as MIME, headers are right, and both parts carry the code and
    /// the expiry.
    private func expectWellFormed(_ data: String) throws {
        let separator = try #require(data.range(of: "\r\n\r\n"))
        var headers: [String: String] = [:]
        for line in data[..<separator.lowerBound].components(separatedBy: "\r\n") {
            let colon = try #require(line.firstIndex(of: ":"))
            headers[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        #expect(headers["From"] == "TCP Chat <\(Self.user)>")
        #expect(headers["To"] == "alice@example.com")
        #expect(headers["Subject"] == MailMessage.defaultSubject)
        #expect(headers["MIME-Version"] == "1.0")
        #expect(headers["Date"]?.hasSuffix("+0000") == true)
        #expect(headers["Message-ID"]?.hasSuffix("@example.com>") == true)
        let contentType = try #require(headers["Content-Type"])
        #expect(contentType.hasPrefix("multipart/alternative; boundary=\""))
        let boundary = String(contentType.split(separator: "\"")[1])
        let body = data[separator.upperBound...]
        let parts = body.components(separatedBy: "--\(boundary)")
        // preamble, text part, HTML part, closing "--"
        #expect(parts.count == 4)
        #expect(parts.last?.hasPrefix("--") == true)
        let text = try #require(parts.first { $0.contains("Content-Type: text/plain") })
        let html = try #require(parts.first { $0.contains("Content-Type: text/html") })
        for part in [text, html] {
            #expect(part.contains("482913"))
            #expect(part.contains("7 minutes"))
        }
        #expect(!data.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
    }
}

@Suite struct DotStuffingTests {
    @Test func doublesLeadingDotsAndNormalisesLineEndings() {
        #expect(SMTPSession.dotStuffed(".a\n..b\r\nc\n.") == "..a\r\n...b\r\nc\r\n..\r\n")
        #expect(SMTPSession.dotStuffed("x\r\n") == "x\r\n")
        #expect(SMTPSession.dotStuffed("") == "")
    }
}
