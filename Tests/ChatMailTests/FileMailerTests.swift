import Foundation
import Testing

@testable import ChatMail

@Suite struct FileMailerTests {
    @Test func writesOneCompleteMessagePerMail() async throws {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("chat-mail-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let mailer = try FileMailer(directory: folder.path, from: "Chat <noreply@example.com>")

        try await mailer.send(OTPMail(recipient: "Alice@Example.com", code: "012345", validForMinutes: 7))
        try await mailer.send(OTPMail(recipient: "bob@example.com", code: "999999", validForMinutes: 1))

        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(files.count == 2)
        #expect(files.allSatisfy { $0.hasSuffix(".eml") })
        let aliceFile = try #require(files.first { $0.hasPrefix("alice@example.com-") })
        let text = try String(contentsOf: folder.appendingPathComponent(aliceFile), encoding: .utf8)

        let (headers, body) = try #require(split(text))
        #expect(headers["From"] == "Chat <noreply@example.com>")
        #expect(headers["To"] == "Alice@Example.com")
        #expect(headers["Subject"] == MailMessage.defaultSubject)
        #expect(headers["MIME-Version"] == "1.0")
        #expect(headers["Date"] != nil)
        #expect(headers["Message-ID"]?.hasSuffix("@example.com>") == true)
        #expect(headers["Content-Type"]?.hasPrefix("multipart/alternative; boundary=") == true)
        #expect(body.contains("012345"))
        #expect(body.contains("expires in 7 minutes"))
        // RFC 5322: CRLF line endings throughout, no bare LF.
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
    }

    @Test func statesTheConfiguredExpiry() {
        let one = MailMessage(mail: OTPMail(recipient: "a@b.cd", code: "123456", validForMinutes: 1))
        #expect(one.textBody.contains("expires in 1 minute "))
        let ten = MailMessage(mail: OTPMail(recipient: "a@b.cd", code: "123456", validForMinutes: 10))
        #expect(ten.textBody.contains("expires in 10 minutes"))
    }

    @Test func fileNamesAreSafe() {
        #expect(FileMailer.fileSafe("A/../b@x.io") == "a_.._b@x.io")
    }

    /// Splits a message into its headers and body.
    private func split(_ message: String) -> ([String: String], String)? {
        guard let separator = message.range(of: "\r\n\r\n") else { return nil }
        var headers: [String: String] = [:]
        for line in message[..<separator.lowerBound].components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (headers, String(message[separator.upperBound...]))
    }
}

@Suite struct MailDateTests {
    @Test func rfc5322Dates() {
        #expect(MailMessage.rfc5322Date(Date(timeIntervalSince1970: 0)) == "Thu, 01 Jan 1970 00:00:00 +0000")
        #expect(
            MailMessage.rfc5322Date(Date(timeIntervalSince1970: 1_795_918_786)) == "Sun, 29 Nov 2026 02:19:46 +0000")
    }
}
