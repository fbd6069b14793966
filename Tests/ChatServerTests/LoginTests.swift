import ChatCore
import ChatTestSupport
import Foundation
import Testing

@testable import ChatServer

@Suite(.serialized) struct LoginTests {
    static let usernamePrompt = "*** Enter username (3-16 characters, alphanumeric + underscore): ***"

    @Test func theWholeLoginFlowWithExactTexts() async throws {
        try await withTestServer { server in
            let bob = try await server.login("bob")
            let alice = try await server.connect()
            #expect(
                try await alice.readLines(3) == [
                    "*** Welcome to TCP Chat Server! ***",
                    "*** Please authenticate to continue. ***",
                    "*** Enter your email address below ***",
                ])
            try await alice.send("alice@example.com")
            #expect(
                try await alice.readLines(3) == [
                    "*** Please wait while we verify your email address... ***",
                    "*** OTP sent to your email. Please check your inbox. ***",
                    "*** Enter OTP code: ***",
                ])
            try await alice.send(try await server.mail.code(for: "alice@example.com", mailIndex: 0))
            #expect(try await alice.readLines(2) == ["*** OTP verified successfully! ***", Self.usernamePrompt])
            try await alice.send("alice")
            #expect(
                try await alice.readLines(3) == [
                    "*** Welcome, alice! ***",
                    "*** You joined #general ***",
                    "*** Type /help for available commands. ***",
                ])
            #expect(try await bob.readLine() == "*** alice joined the room ***")
            #expect(try await alice.linesUntilCaughtUp() == [])
        }
    }

    @Test func anInvalidEmailIsAskedForAgain() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndGreet()
            for bad in ["not-an-email", "a b@example.com", "alice@localhost"] {
                try await client.send(bad)
                #expect(
                    try await client.readLines(3) == [
                        "*** Please wait while we verify your email address... ***",
                        "ERROR: Invalid email address.",
                        "*** Enter your email address below ***",
                    ])
            }
            try await client.send("alice@example.com")
            try await client.readUntil("*** Enter OTP code: ***")
        }
    }

    @Test func wrongCodesCountDownThenTheConnectionIsClosed() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndGreet()
            try await client.send("alice@example.com")
            try await client.readUntil("*** Enter OTP code: ***")
            let code = try await server.mail.code(for: "alice@example.com", mailIndex: 0)
            let wrong = code == "000000" ? "111111" : "000000"
            try await client.send(wrong)
            #expect(
                try await client.readLines(2) == [
                    "ERROR: Invalid OTP code (2 attempts left).", "*** Enter OTP code: ***",
                ])
            try await client.send("nonsense")
            #expect(
                try await client.readLines(2) == [
                    "ERROR: Invalid OTP code (1 attempts left).", "*** Enter OTP code: ***",
                ])
            try await client.send(wrong)
            #expect(try await client.waitForClose() == ["ERROR: Maximum verification attempts exceeded."])
            // The code is void: nothing is left behind.
            _ = try await server.waitForOccupancy { $0.pendingCodes == 0 && $0.connections == 0 }
        }
    }

    @Test func aWrongCodeThenTheRightOneLogsIn() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndGreet()
            try await client.send("alice@example.com")
            try await client.readUntil("*** Enter OTP code: ***")
            let code = try await server.mail.code(for: "alice@example.com", mailIndex: 0)
            try await client.send(code == "000000" ? "111111" : "000000")
            try await client.readUntil("*** Enter OTP code: ***")
            try await client.send(code)
            #expect(try await client.readLine() == "*** OTP verified successfully! ***")
        }
    }

    @Test func anExpiredCodeStartsOver() async throws {
        try await withTestServer(configure: { $0.otpExpiration = .seconds(300) }) { server in
            let client = try await server.connectAndGreet()
            try await client.send("alice@example.com")
            try await client.readUntil("*** Enter OTP code: ***")
            let code = try await server.mail.code(for: "alice@example.com", mailIndex: 0)
            server.clock.advance(by: .seconds(300) + .milliseconds(1))
            try await client.send(code)
            #expect(
                try await client.readLines(2) == ["ERROR: OTP has expired.", "*** Enter your email address below ***"])
            // And a new code works.
            try await client.send("alice@example.com")
            try await client.readUntil("*** Enter OTP code: ***")
            try await client.send(try await server.mail.code(for: "alice@example.com", mailIndex: 1))
            #expect(try await client.readLine() == "*** OTP verified successfully! ***")
        }
    }

    @Test func aNewCodeReplacesTheOldOne() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndGreet()
            try await client.send("alice@example.com")
            try await client.readUntil("*** Enter OTP code: ***")
            let first = try await server.mail.code(for: "alice@example.com", mailIndex: 0)
            // A second connection asks for a code for the same address.
            let other = try await server.connectAndGreet()
            try await other.send("alice@example.com")
            try await other.readUntil("*** Enter OTP code: ***")
            let second = try await server.mail.code(for: "alice@example.com", mailIndex: 1)
            if first != second {
                try await client.send(first)
                #expect(try await client.readLine() == "ERROR: Invalid OTP code (2 attempts left).")
                try await client.readUntil("*** Enter OTP code: ***")
            }
            try await client.send(second)
            #expect(try await client.readLine() == "*** OTP verified successfully! ***")
        }
    }

    @Test func aMailThatCannotBeSentIsReportedAndLeavesNoCode() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndGreet()
            // Replace the mail folder with a plain file: the transport cannot write.
            try FileManager.default.removeItem(atPath: server.mail.path)
            try Data("not a folder".utf8).write(to: URL(fileURLWithPath: server.mail.path))
            defer {
                try? FileManager.default.removeItem(atPath: server.mail.path)
                try? FileManager.default.createDirectory(atPath: server.mail.path, withIntermediateDirectories: true)
            }
            try await client.send("alice@example.com")
            #expect(
                try await client.readLines(3) == [
                    "*** Please wait while we verify your email address... ***",
                    "ERROR: Failed to send OTP. Please try again later.",
                    "*** Enter your email address below ***",
                ])
            #expect(server.server.occupancy.pendingCodes == 0)
            // The cause is in the log, not in front of the user.
            #expect(server.log.text.contains("Failed to send OTP mail"))
        }
    }

    @Test func badAndTakenUsernamesAreAskedForAgain() async throws {
        try await withTestServer { server in
            let alice = try await server.login("Alice")
            let client = try await server.connectAndGreet()
            try await client.send("bob@example.com")
            try await client.readUntil("*** Enter OTP code: ***")
            try await client.send(try await server.mail.code(for: "bob@example.com", mailIndex: 0))
            try await client.readUntil(Self.usernamePrompt)

            try await client.send("ab")
            #expect(
                try await client.readLines(2) == [
                    "ERROR: Username must be between 3 and 16 characters.", Self.usernamePrompt,
                ])
            try await client.send("bob!")
            #expect(
                try await client.readLines(2) == [
                    "ERROR: Username may only contain letters, digits and underscores.", Self.usernamePrompt,
                ])
            try await client.send("alice")
            #expect(
                try await client.readLines(2) == ["ERROR: Username 'alice' is already taken.", Self.usernamePrompt])
            try await client.send("ALICE")
            #expect(
                try await client.readLines(2) == ["ERROR: Username 'ALICE' is already taken.", Self.usernamePrompt])
            try await client.send("bob")
            #expect(try await client.readLine() == "*** Welcome, bob! ***")
            _ = alice
        }
    }

    @Test func usernameBoundsComeFromTheSettings() async throws {
        try await withTestServer(configure: { $0.usernameRules = UsernameRules(minimumLength: 2, maximumLength: 5) }) {
            server in
            let client = try await server.connectAndGreet()
            try await client.send("bob@example.com")
            try await client.readUntil("*** Enter OTP code: ***")
            try await client.send(try await server.mail.code(for: "bob@example.com", mailIndex: 0))
            try await client.readUntil("*** OTP verified successfully! ***")
            #expect(
                try await client.readLine()
                    == "*** Enter username (2-5 characters, alphanumeric + underscore): ***")
            try await client.send("bobby1")
            #expect(try await client.readLine() == "ERROR: Username must be between 2 and 5 characters.")
        }
    }

    @Test func quitWorksAtEveryLoginStep() async throws {
        try await withTestServer { server in
            // At the e-mail prompt.
            let first = try await server.connectAndGreet()
            try await first.send("/quit")
            #expect(try await first.waitForClose() == ["*** Goodbye! ***"])

            // At the code prompt.
            let second = try await server.connectAndGreet()
            try await second.send("carol@example.com")
            try await second.readUntil("*** Enter OTP code: ***")
            try await second.send("/QUIT")
            #expect(try await second.waitForClose() == ["*** Goodbye! ***"])

            // At the username prompt.
            let third = try await server.connectAndGreet()
            try await third.send("dave@example.com")
            try await third.readUntil("*** Enter OTP code: ***")
            try await third.send(try await server.mail.code(for: "dave@example.com", mailIndex: 0))
            try await third.readUntil(Self.usernamePrompt)
            try await third.send("/quit")
            #expect(try await third.waitForClose() == ["*** Goodbye! ***"])

            // Logged in.
            let fourth = try await server.login("erin")
            try await fourth.send("/quit")
            #expect(try await fourth.waitForClose() == ["*** Goodbye! ***"])

            // Nothing about them is left: no connection, IP slot, user or code.
            _ = try await server.waitForOccupancy {
                $0.connections == 0 && $0.onlineUsers == 0 && $0.ipSlots == 0 && $0.pendingCodes == 0
            }
        }
    }

    @Test func linesTypedWhileTheMailIsSentAreHandledInOrder() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndGreet()
            // E-mail and a (wrong) code in one packet: the code waits for the mail.
            try await client.sendRaw(Array("alice@example.com\r\n000000x\r\n".utf8))
            #expect(
                try await client.readLines(5) == [
                    "*** Please wait while we verify your email address... ***",
                    "*** OTP sent to your email. Please check your inbox. ***",
                    "*** Enter OTP code: ***",
                    "ERROR: Invalid OTP code (2 attempts left).",
                    "*** Enter OTP code: ***",
                ])
        }
    }
}
