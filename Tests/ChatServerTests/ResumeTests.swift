import ChatCore
import ChatTestSupport
import Foundation
import Testing

@testable import ChatServer

/// Staying signed in (SPEC §13) over real sockets: `/token`, `/resume` at the e-mail
/// prompt, the stale session it replaces, `/logout`, and what makes a token stop working.
@Suite(.serialized) struct ResumeTests {
    /// Asks for a token and returns it (the line is exact; the token URL-safe, 43 characters).
    private func token(for client: TestClient) async throws -> String {
        try await client.send("/token")
        let line = try await client.readLine()
        let prefix = "*** Resume token: "
        guard line.hasPrefix(prefix), line.hasSuffix(" ***") else { throw TestFailure("not a token line: \(line)") }
        let token = String(line.dropFirst(prefix.count).dropLast(4))
        #expect(token.count == 43)
        #expect(token.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        return token
    }

    private func resume(_ token: String, from source: String? = nil, on server: TestServer) async throws -> TestClient {
        let client = try await server.connectAndGreet(from: source)
        try await client.send("/resume \(token)")
        return client
    }

    @Test func aTokenBringsTheAccountBackUnderItsNameInItsRoomWithoutACode() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            try await alice.send("/join #den")
            try await alice.readUntil("*** You joined #den ***")
            try await bob.send("/join #den")
            try await alice.readUntil("*** bob joined the room ***")
            let token = try await token(for: alice)
            try await alice.send("/quit")
            try await alice.waitForClose()
            try await bob.readUntil("*** alice left the room ***")

            let mailsBefore = server.mail.mails(for: "alice@example.com").count
            let back = try await resume(token, on: server)
            #expect(
                try await back.readLines(3) == [
                    "*** Welcome back, alice! ***", "*** You joined #den ***",
                    "*** Type /help for available commands. ***",
                ])
            try await bob.readUntil("*** alice joined the room ***")
            #expect(server.mail.mails(for: "alice@example.com").count == mailsBefore)
            try await back.send("hello again")
            try await bob.readUntil("[alice]: hello again")
            // The token is never logged, anywhere.
            #expect(!server.log.text.contains(token))
            let hash = ResumeToken(token: token).hash
            #expect(!server.log.text.contains(hash))
        }
    }

    @Test func badTokensAreRefusedAndTheLoginGoesOn() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndGreet()
            try await client.send("/resume not-a-token")
            #expect(
                try await client.readLines(2) == [
                    "ERROR: Invalid or expired resume token.", "*** Enter your email address below ***",
                ])
            try await client.send("/resume")
            #expect(
                try await client.readLines(2) == [
                    "ERROR: Usage: /resume <token>", "*** Enter your email address below ***",
                ])
            // The normal login still works on the same connection.
            try await server.logIn(client, as: "carol")
            // Once online, /resume is just an unknown command.
            try await client.send("/resume abc")
            #expect(
                try await client.readLine() == "ERROR: Unknown command: /resume. Type /help for available commands.")
        }
    }

    @Test func logoutRevokesThisTokenAndLogoutAllEveryToken() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let first = try await token(for: alice)
            let second = try await token(for: alice)
            // /logout revokes the token this connection was given last, then quits.
            try await alice.send("/logout")
            #expect(try await alice.waitForClose() == ["*** Goodbye! ***"])
            let refused = try await resume(second, on: server)
            #expect(try await refused.readLine() == "ERROR: Invalid or expired resume token.")
            await refused.close()
            // The other still works; /logout all from the resumed connection ends it too.
            let back = try await resume(first, on: server)
            try await back.readUntil("*** Type /help for available commands. ***")
            let third = try await token(for: back)
            try await back.send("/logout all")
            #expect(try await back.waitForClose() == ["*** Goodbye! ***"])
            for revoked in [first, third] {
                let client = try await resume(revoked, on: server)
                #expect(try await client.readLine() == "ERROR: Invalid or expired resume token.")
                await client.close()
            }
        }
    }

    @Test func tokensExpireAndABanRevokesThemForGood() async throws {
        try await withTestServer(configure: { configuration in
            configuration.resumeTokenDays = 2
            configuration.adminEmails = ["root@example.com"]
        }) { server in
            let alice = try await server.login("alice")
            let expiring = try await token(for: alice)
            await alice.close()
            server.clock.advance(by: .seconds(2 * 86_400 + 1))
            let late = try await resume(expiring, on: server)
            #expect(try await late.readLine() == "ERROR: Invalid or expired resume token.")
            await late.close()

            let bob = try await server.login("bob")
            let banned = try await token(for: bob)
            let root = try await server.login("opal", email: "root@example.com")
            try await root.send("/ban bob 1")
            _ = try await bob.waitForClose()
            try await root.send("/unban bob@example.com")
            try await root.readUntil("*** Ban lifted: bob@example.com ***")
            let after = try await resume(banned, on: server)
            #expect(try await after.readLine() == "ERROR: Invalid or expired resume token.")
        }
    }

    @Test func aResumeReplacesTheStaleSessionAndTakesItsSlot() async throws {
        try await withTestServer(configure: { $0.maxConnectionsPerIP = 1 }) { server in
            let bob = try await server.login("bob")
            let stale = try await server.login("alice", from: "127.0.0.50")
            try await bob.readUntil("*** alice joined the room ***")
            let token = try await token(for: stale)
            // The address's one slot is still held (a half-open connection, say): the new
            // connection is told so, but may still resume, which ends the stale session.
            let fresh = try await server.connect(from: "127.0.0.50")
            #expect(try await fresh.readLine() == "ERROR: IP address 127.0.0.50 already has an active connection")
            try await fresh.send("/resume \(token)")
            #expect(try await stale.waitForClose() == ["*** You signed in from another connection. ***"])
            #expect(try await fresh.readLine() == "*** Welcome back, alice! ***")
            try await fresh.readUntil("*** Type /help for available commands. ***")
            try await bob.readUntil("*** alice left the room ***")
            try await bob.readUntil("*** alice joined the room ***")
            try await fresh.send("/users")
            #expect(try await fresh.readLines(3) == ["Online Users (2):", "  - alice (you)", "  - bob"])

            // Without a token, the per-IP refusal closes as it always did.
            let other = try await server.connect(from: "127.0.0.50")
            #expect(try await other.readLine() == "ERROR: IP address 127.0.0.50 already has an active connection")
            try await other.send("alice@example.com")
            #expect(try await other.waitForClose().isEmpty)
            // From another address a resume replaces the session just the same.
            let elsewhere = try await resume(token, from: "127.0.0.51", on: server)
            #expect(try await fresh.waitForClose() == ["*** You signed in from another connection. ***"])
            #expect(try await elsewhere.readLine() == "*** Welcome back, alice! ***")
        }
    }

    @Test func aTakenNameLeadsToTheUsernamePromptThenBackToTheRoom() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            try await alice.send("/join #den")
            try await alice.readUntil("*** You joined #den ***")
            let token = try await token(for: alice)
            try await alice.send("/quit")
            try await alice.waitForClose()
            let thief = try await server.login("alice", email: "other@example.com")
            let back = try await resume(token, on: server)
            #expect(
                try await back.readLines(2) == [
                    "ERROR: Username 'alice' is already taken.",
                    "*** Enter username (3-16 characters, alphanumeric + underscore): ***",
                ])
            try await back.send("alice2")
            #expect(try await back.readLines(2) == ["*** Welcome back, alice2! ***", "*** You joined #den ***"])
            await thief.close()
        }
    }

    @Test func guessingTokensIsThrottledLikeAskingForCodes() async throws {
        try await withTestServer(configure: { configuration in
            configuration.limits.otpRequestsPerIPPerHour = 3
        }) { server in
            let guesser = try await server.connectAndGreet()
            for _ in 0..<3 {
                try await guesser.send("/resume \(ResumeToken.random().token)")
                #expect(try await guesser.readLine() == "ERROR: Invalid or expired resume token.")
                try await guesser.readUntil("*** Enter your email address below ***")
            }
            try await guesser.send("/resume \(ResumeToken.random().token)")
            let throttled = try await guesser.readLine()
            #expect(throttled.hasPrefix("ERROR: Too many sign-in attempts. Try again in "), "\(throttled)")
        }
    }
}
