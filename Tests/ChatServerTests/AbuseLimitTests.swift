import ChatCore
import ChatTestSupport
import NIOCore
import Testing

@testable import ChatHub
@testable import ChatServer

/// Each limit of issue "Hard to abuse", over real sockets.
@Suite(.serialized) struct AbuseLimitTests {
    /// Asks for a code for `email` on a fresh connection; returns what the server answered.
    private func requestCode(
        _ server: TestServer, _ email: String, from source: String? = nil
    ) async throws
        -> [String]
    {
        let client = try await server.connectAndGreet(from: source)
        try await client.send(email)
        let answer = try await client.readLines(3)
        await client.close()
        // The IP slot is free again before the next request.
        _ = try await server.waitForOccupancy { $0.connections == 0 }
        return answer
    }

    @Test func codesForOneAddressAreSpacedOut() async throws {
        try await withTestServer(configure: { $0.limits.otpRequestInterval = .seconds(30) }) { server in
            #expect(try await requestCode(server, "alice@example.com").last == "*** Enter OTP code: ***")
            let refused = try await requestCode(server, "ALICE@example.com")
            #expect(refused.first == "*** Please wait while we verify your email address... ***")
            let error = refused[1]
            #expect(error.hasPrefix("ERROR: Too many codes requested. Try again in "))
            let seconds = Int(error.split(separator: " ")[8]) ?? 0
            #expect((1...30).contains(seconds))
            #expect(refused[2] == "*** Enter your email address below ***")
            // Nothing was sent for the refused request.
            #expect(server.mail.mails(for: "alice@example.com").count == 1)
        }
    }

    @Test func codesPerAddressPerHourAreCapped() async throws {
        try await withTestServer(configure: { $0.limits.otpRequestsPerHour = 3 }) { server in
            for _ in 0..<3 {
                let answer = try await requestCode(server, "bob@example.com")
                #expect(answer.last == "*** Enter OTP code: ***")
            }
            #expect(try await requestCode(server, "bob@example.com")[1].hasPrefix("ERROR: Too many codes requested."))
            // Another address is unaffected.
            #expect(try await requestCode(server, "carol@example.com").last == "*** Enter OTP code: ***")
        }
    }

    /// Issue "One hub", fix 3: only codes that were never used count against an address.
    @Test func codesUsedToLogInDoNotCountAgainstTheAddress() async throws {
        try await withTestServer(configure: {
            $0.limits.otpRequestInterval = .seconds(30)
            $0.limits.otpRequestsPerHour = 3
        }) { server in
            // Five logins in a row, each within seconds of the last: never throttled.
            for round in 0..<5 {
                let alice = try await server.login("alice", from: "127.0.0.20")
                try await alice.send("/quit")
                _ = try await alice.waitForClose()
                _ = try await server.waitForOccupancy { $0.connections == 0 && $0.onlineUsers == 0 }
                #expect(server.mail.mails(for: "alice@example.com").count == round + 1)
            }
            // A code asked for and never used still spaces the next one out.
            #expect(try await requestCode(server, "alice@example.com").last == "*** Enter OTP code: ***")
            let refused = try await requestCode(server, "alice@example.com")
            #expect(refused[1].hasPrefix("ERROR: Too many codes requested. Try again in "))
        }
    }

    @Test func codesPerClientIPAreCapped() async throws {
        try await withTestServer(configure: { $0.limits.otpRequestsPerIPPerHour = 2 }) { server in
            for user in ["a", "b"] {
                let answer = try await requestCode(server, "\(user)@example.com", from: "127.0.0.9")
                #expect(answer.last == "*** Enter OTP code: ***")
            }
            #expect(
                try await requestCode(server, "c@example.com", from: "127.0.0.9")[1]
                    .hasPrefix("ERROR: Too many codes requested."))
            #expect(
                try await requestCode(server, "c@example.com", from: "127.0.0.10").last == "*** Enter OTP code: ***")
        }
    }

    @Test func codesServerWideArePerMinute() async throws {
        try await withTestServer(configure: { $0.limits.otpRequestsPerMinute = 2 }) { server in
            let first = try await requestCode(server, "a@example.com")
            let second = try await requestCode(server, "b@example.com")
            let third = try await requestCode(server, "c@example.com")
            #expect(first.last == "*** Enter OTP code: ***")
            #expect(second.last == "*** Enter OTP code: ***")
            #expect(third[1].hasPrefix("ERROR: Too many codes requested."))
            #expect(server.mail.mails(for: "c@example.com").isEmpty)
        }
    }

    @Test func invalidAddressesPerConnectionAreCapped() async throws {
        try await withTestServer(configure: { $0.limits.maxEmailAttempts = 3 }) { server in
            let client = try await server.connectAndGreet()
            for _ in 0..<2 {
                try await client.send("nope")
                try await client.readUntil("*** Enter your email address below ***")
            }
            try await client.send("still nope")
            #expect(
                try await client.waitForClose() == [
                    "*** Please wait while we verify your email address... ***", "ERROR: Invalid email address.",
                    "ERROR: Too many invalid email addresses.",
                ])
        }
    }

    @Test func aLoginThatTakesTooLongIsClosed() async throws {
        try await withTestServer(configure: { $0.limits.loginTimeout = .milliseconds(500) }) { server in
            let online = try await server.login("alice")
            let idle = try await server.connectAndGreet()
            let halfway = try await server.connectAndGreet()
            try await halfway.send("bob@example.com")
            try await halfway.readUntil("*** Enter OTP code: ***")
            #expect(try await idle.waitForClose() == ["ERROR: Login timed out."])
            #expect(try await halfway.waitForClose() == ["ERROR: Login timed out."])
            // The slots they held are free; the user who logged in in time stays.
            _ = try await server.waitForOccupancy { $0.connections == 1 && $0.pendingCodes == 0 }
            try await online.send("still here")
            #expect(try await online.readLine() == "[alice]: still here")
        }
    }

    @Test func theServerWideConnectionLimitIsPolite() async throws {
        try await withTestServer(configure: { $0.limits.maxConnections = 2 }) { server in
            _ = try await server.connectAndGreet()
            let second = try await server.connectAndGreet()
            let third = try await server.connect()
            #expect(try await third.waitForClose() == ["ERROR: Server is full. Please try again later."])
            await second.close()
            _ = try await server.waitForOccupancy { $0.connections == 1 }
            _ = try await server.connectAndGreet()
        }
    }

    @Test func newConnectionsPerIPPerMinuteAreCapped() async throws {
        try await withTestServer(configure: { $0.limits.connectionsPerIPPerMinute = 3 }) { server in
            for _ in 0..<3 {
                let client = try await server.connectAndGreet(from: "127.0.0.7")
                await client.close()
                _ = try await server.waitForOccupancy { $0.connections == 0 }
            }
            let fourth = try await server.connect(from: "127.0.0.7")
            let refusal = try await fourth.waitForClose()
            #expect(refusal.count == 1)
            #expect(refusal.first?.hasPrefix("ERROR: Too many connections from your address. Try again in ") == true)
            _ = try await server.connectAndGreet(from: "127.0.0.8")
        }
    }

    @Test func aFloodIsSlowedDownNotDropped() async throws {
        try await withTestServer(configure: {
            $0.limits.messageBurst = 5
            $0.limits.messagesPerSecond = 20
        }) { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            try await alice.readUntil("*** bob joined the room ***")
            let start = ContinuousClock.now
            // 30 lines in one write: 5 pass at once, 25 at 20 per second.
            try await alice.sendRaw(Array((0..<30).map { "line \($0)\n" }.joined().utf8))
            #expect(try await bob.readLines(30) == (0..<30).map { "[alice]: line \($0)" })
            // A lower bound only: flood control cannot be faster than its rate.
            #expect(ContinuousClock.now - start >= .milliseconds(1000))
        }
    }

    @Test func aClientThatKeepsFloodingIsDisconnected() async throws {
        try await withTestServer(configure: {
            $0.limits.messageBurst = 1
            $0.limits.messagesPerSecond = 1
            $0.limits.maxQueuedLines = 50
        }) { server in
            let alice = try await server.login("alice")
            let mallory = try await server.login("mallory")
            try await alice.readUntil("*** mallory joined the room ***")
            try await mallory.sendRaw(Array(String(repeating: "spam\n", count: 500).utf8))
            #expect(
                try await mallory.waitForClose().last == "ERROR: You are sending too fast (flooding). Disconnected.")
            try await alice.readUntil("*** mallory left the room ***")
            try await alice.send("quiet now")
            try await alice.readUntil("[alice]: quiet now")
            #expect(server.log.text.contains("Disconnecting flooding client"))
        }
    }

    /// The bound must not depend on how many lines one read brings in. Reading pauses
    /// while lines wait, and one read cycle takes at most 4 x 16 KiB: with 1 000-byte lines
    /// that is about 64 lines, never more than MAX_QUEUED_LINES = 100 at once. The lines a
    /// flood has had held back keep adding up, though.
    @Test func aFloodOfLongLinesIsDisconnectedToo() async throws {
        try await withTestServer(configure: {
            $0.limits.messageBurst = 5
            $0.limits.messagesPerSecond = 50
            $0.limits.maxQueuedLines = 100
        }) { server in
            let alice = try await server.login("alice")
            let mallory = try await server.login("mallory")
            try await alice.readUntil("*** mallory joined the room ***")
            // An honest paste within the bound passes whole: 5 at once, 30 held back.
            try await alice.sendRaw(Array((0..<35).map { "paste \($0)\n" }.joined().utf8))
            #expect(try await mallory.readLines(35) == (0..<35).map { "[alice]: paste \($0)" })

            // 10 lines of 1 000 bytes every 25 ms (400 a second against 50 allowed), for at
            // most 8 s.
            let line = "spam " + String(repeating: "x", count: 994) + "\n"
            var chunks = 0
            while !mallory.isClosed, chunks < 320 {
                try? await mallory.sendRaw(Array(String(repeating: line, count: 10).utf8))
                chunks += 1
                try await Task.sleep(for: .milliseconds(25))  // The flood's pace: 400 lines a second.
            }
            #expect(
                try await mallory.waitForClose().last == "ERROR: You are sending too fast (flooding). Disconnected.")
            try await alice.readUntil("*** mallory left the room ***", timeout: .seconds(20))
            #expect(server.log.text.contains("Disconnecting flooding client"))
        }
    }

    @Test func reservedUsernamesCannotBeTaken() async throws {
        try await withTestServer { server in
            let client = try await server.connectAndGreet()
            try await client.send("x@example.com")
            try await client.readUntil("*** Enter OTP code: ***")
            try await client.send(try await server.mail.code(for: "x@example.com", mailIndex: 0))
            try await client.readUntil(LoginTests.usernamePrompt)
            for name in ["admin", "Root", "SERVER", "system", "operator"] {
                try await client.send(name)
                let answer = try await client.readLines(2)
                #expect(answer == ["ERROR: Username '\(name)' is reserved.", LoginTests.usernamePrompt])
            }
        }
    }
}

@Suite struct ClientAddressTests {
    @Test func ipv6CountsPerSlash64AndMappedIPv4AsIPv4() throws {
        let a = try #require(ClientAddress(try .init(ipAddress: "2001:db8:1:2::1", port: 1)))
        let b = try #require(ClientAddress(try .init(ipAddress: "2001:db8:1:2:ffff::9", port: 2)))
        let c = try #require(ClientAddress(try .init(ipAddress: "2001:db8:1:3::1", port: 3)))
        #expect(a.limitKey == "2001:db8:1:2::/64")
        #expect(a.limitKey == b.limitKey)
        #expect(a.limitKey != c.limitKey)
        #expect(a.display != b.display)
        let mapped = try #require(ClientAddress(try .init(ipAddress: "::ffff:192.0.2.7", port: 4)))
        #expect(mapped.limitKey == "192.0.2.7" && mapped.display == "192.0.2.7")
        let v4 = try #require(ClientAddress(try .init(ipAddress: "203.0.113.5", port: 5)))
        #expect(v4.limitKey == "203.0.113.5")
    }
}
