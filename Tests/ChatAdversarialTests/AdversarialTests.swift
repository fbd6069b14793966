import ChatCore
import ChatServer
import ChatTestSupport
import Foundation
import Testing

/// Attacks a real server over real sockets, with the production limits, while an honest
/// pair of users chats alongside and must notice nothing. Every loop is bounded in count
/// and time; all traffic stays on loopback.
@Suite(.serialized) struct AdversarialTests {
    /// Production limits, but a short login deadline so idle attackers go quickly.
    static func productionLimits(_ configuration: inout ServerConfiguration) {
        configuration.limits = AbuseLimits.defaults
        configuration.limits.loginTimeout = .seconds(2)
    }

    /// Two honest users who must keep chatting whatever happens.
    struct HonestPair {
        let alice: TestClient
        let bob: TestClient

        static func join(_ server: TestServer) async throws -> HonestPair {
            let alice = try await server.login("alice", from: "127.0.200.1")
            let bob = try await server.login("bob", from: "127.0.200.2")
            try await alice.readUntil("*** bob joined the room ***")
            return HonestPair(alice: alice, bob: bob)
        }

        /// Alice says something; Bob must get it promptly.
        /// - Returns: what Bob received before it (what the attack showed him).
        @discardableResult
        func stillChatting(_ tag: String) async throws -> [String] {
            try await alice.send("honest \(tag)")
            let before = try await bob.readUntil("[alice]: honest \(tag)", timeout: .seconds(15))
            try await alice.readUntil("[alice]: honest \(tag)", timeout: .seconds(15))
            return before
        }
    }

    /// The server process's resident memory (the test process hosts it), in KiB.
    static func residentKiB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    @Test func randomBinaryGarbage() async throws {
        try await withTestServer(configure: Self.productionLimits) { server in
            let honest = try await HonestPair.join(server)
            var generator = SystemRandomNumberGenerator()
            for round in 0..<4 {
                let attacker = try await server.connect(from: "127.0.201.\(round + 1)")
                for _ in 0..<16 {
                    let chunk = (0..<16_384).map { _ in UInt8.random(in: 0...255, using: &generator) }
                    try? await attacker.sendRaw(chunk)
                }
                try await honest.stillChatting("garbage \(round)")
                await attacker.close()
            }
            _ = try await server.waitForOccupancy { $0.connections == 2 && $0.pendingCodes == 0 }
        }
    }

    @Test func nulBytesInvalidUTF8EscapesAndBidiAreStripped() async throws {
        try await withTestServer(configure: Self.productionLimits) { server in
            let honest = try await HonestPair.join(server)
            let mallory = try await server.login("mallory", from: "127.0.202.1")
            try await honest.bob.readUntil("*** mallory joined the room ***")
            let payloads: [[UInt8]] = [
                Array("a\u{0}b\u{0}c\n".utf8),
                [0x78, 0xC3, 0x28, 0xF0, 0x9F, 0x79, 0x0A],
                Array("\u{1B}[2J\u{1B}[H\u{1B}]0;owned\u{7}clear\u{9B}31mred\n".utf8),
                Array("evil\u{202E}txt.exe\u{2066}x\u{2069}\n".utf8),
                Array("/msg bob \u{1B}[5mblink\u{1B}[0m \u{202E}gnp.exe\n".utf8),
                Array("/me \u{7}\u{7}rings\n".utf8),
            ]
            for payload in payloads { try await mallory.sendRaw(payload) }
            #expect(
                try await honest.bob.readLines(5) == [
                    "[mallory]: abc",
                    "[mallory]: x\u{FFFD}(\u{FFFD}y",
                    "[mallory]: clearred",
                    "[mallory]: eviltxt.exex",
                    "[mallory]: [PM] blink gnp.exe",
                ])
            #expect(try await honest.bob.readLine() == "* mallory rings")
            try await honest.stillChatting("after escapes")
        }
    }

    @Test func aTenMegabyteLineWithoutNewline() async throws {
        try await withTestServer(configure: Self.productionLimits) { server in
            let honest = try await HonestPair.join(server)
            let mallory = try await server.login("mallory", from: "127.0.203.1")
            try await honest.bob.readUntil("*** mallory joined the room ***")
            let before = Self.residentKiB()
            let chunk = [UInt8](repeating: UInt8(ascii: "A"), count: 65_536)
            for index in 0..<160 {  // 160 x 64 KiB = 10 MiB
                try await mallory.sendRaw(chunk)
                if index % 40 == 0 { try await honest.stillChatting("during long line \(index)") }
            }
            try await mallory.sendRaw(Array("\nhello\n".utf8))
            #expect(
                try await mallory.readUntil("[mallory]: hello", timeout: .seconds(30)).filter { $0.hasPrefix("ERROR") }
                    == [
                        "ERROR: Line too long. Maximum length is 4096 bytes; the line was discarded."
                    ])
            let growth = Self.residentKiB() - before
            // The line was never buffered: far less than its 10 MiB stayed in memory.
            #expect(growth < 8 * 1024, "RSS grew by \(growth) KiB")
            try await honest.stillChatting("after long line")
        }
    }

    @Test func tenThousandShortLinesAtOnce() async throws {
        try await withTestServer(configure: Self.productionLimits) { server in
            let honest = try await HonestPair.join(server)
            let mallory = try await server.login("mallory", from: "127.0.204.1")
            try await honest.bob.readUntil("*** mallory joined the room ***")
            try await mallory.sendRaw(Array(String(repeating: "x\n", count: 10_000).utf8))
            // Flood control queues at most MAX_QUEUED_LINES (1000); this is far beyond.
            #expect(
                try await mallory.waitForClose(timeout: .seconds(20)).last
                    == "ERROR: You are sending too fast (flooding). Disconnected.")
            let seen = try await honest.stillChatting("after flood")
            // Bob saw at most mallory's burst (MESSAGE_BURST, 20), not ten thousand lines.
            #expect(seen.filter { $0 == "[mallory]: x" }.count <= 20)
            #expect(seen.last == "*** mallory left the room ***")
            #expect(server.log.text.contains("Disconnecting flooding client"))
            _ = try await server.waitForOccupancy { $0.connections == 2 && $0.onlineUsers == 2 }
        }
    }

    @Test func aFloodOfCodeRequestsIsThrottled() async throws {
        try await withTestServer(configure: Self.productionLimits) { server in
            let honest = try await HonestPair.join(server)
            var throttled = 0
            // 25 requests for 25 addresses from one IP; OTP_REQUESTS_PER_IP_PER_HOUR is 20.
            for index in 0..<25 {
                let attacker = try await server.connectAndGreet(from: "127.0.205.1")
                try await attacker.send("victim\(index)@example.com")
                let answer = try await attacker.readLines(3)
                if answer[1].hasPrefix("ERROR: Too many codes requested.") { throttled += 1 }
                await attacker.close()
                _ = try await server.waitForOccupancy { $0.connections == 2 }
            }
            let sent = (0..<25).map { server.mail.mails(for: "victim\($0)@example.com").count }.reduce(0, +)
            #expect(sent == 20)
            #expect(throttled == 5)
            try await honest.stillChatting("after code flood")
        }
    }

    @Test func bruteForcingACodeIsBounded() async throws {
        try await withTestServer(configure: Self.productionLimits) { server in
            let honest = try await HonestPair.join(server)
            var guesses = 0
            var refusals = 0
            // The attacker keeps asking for new codes and guessing; each code allows
            // OTP_MAX_RETRIES (3) guesses, and codes per address are spaced and capped.
            for round in 0..<10 {
                let attacker = try await server.connectAndGreet(from: "127.0.206.\(round + 1)")
                try await attacker.send("victim@example.com")
                let answer = try await attacker.readLines(3)
                guard answer.last == "*** Enter OTP code: ***" else {
                    #expect(answer[1].hasPrefix("ERROR: Too many codes requested."))
                    refusals += 1
                    await attacker.close()
                    continue
                }
                for guess in ["000000", "111111", "222222"] {
                    try await attacker.send(guess)
                    guesses += 1
                    let reply = try await attacker.readLine()
                    if reply == "*** OTP verified successfully! ***" { Issue.record("guessed the code") }
                    if reply == "ERROR: Maximum verification attempts exceeded." { break }
                    _ = try await attacker.readLine()  // the prompt again
                }
                _ = try await attacker.waitForClose()
            }
            // With a 30-second spacing per address, one code in this run: 3 guesses in all.
            #expect(guesses == 3)
            #expect(refusals == 9)
            #expect(server.server.occupancy.pendingCodes == 0)
            try await honest.stillChatting("after brute force")
        }
    }

    /// Connects from an address whose previous connection the client just closed. The server
    /// gives that slot back once it has seen the close, which on a busy machine can come a
    /// moment after the next connect: a refusal for the slot is retried, at most 50 times.
    static func connectAndGreet(_ server: TestServer, reusing source: String) async throws -> TestClient {
        for _ in 0..<49 {
            do {
                return try await server.connectAndGreet(from: source)
            } catch  where "\(error)".contains("already has an active connection") {
                // The server's view of the close, which a client cannot see, is what is waited for.
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        return try await server.connectAndGreet(from: source)
    }

    @Test func aThousandConnectDisconnectCyclesLeaveNothingBehind() async throws {
        try await withTestServer(configure: Self.productionLimits) { server in
            let honest = try await HonestPair.join(server)
            let before = Self.residentKiB()
            // 1 000 cycles, 20 at a time; each worker has 25 addresses of its own (2 cycles
            // each: under the per-IP connection rate).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<20 {
                    group.addTask {
                        for cycle in 0..<50 {
                            let index = worker * 50 + cycle
                            let source = "127.0.\(10 + worker).\(cycle % 25 + 1)"
                            let client = try await Self.connectAndGreet(server, reusing: source)
                            switch index % 4 {
                            case 0:
                                break  // connect and leave
                            case 1:
                                try await client.sendRaw(Array("half a li".utf8))  // and leave
                            case 2:
                                try await client.send("not an address")
                                try await client.readUntil("*** Enter your email address below ***")
                            default:
                                try await client.send("churn\(index)@example.com")
                                _ = try await client.readLines(3)  // a code, or throttled
                            }
                            await client.close()
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await honest.stillChatting("after churn")
            let occupancy = try await server.waitForOccupancy(timeout: .seconds(20)) {
                $0.connections == 2 && $0.ipSlots == 2 && $0.onlineUsers == 2 && $0.pendingCodes == 0
            }
            #expect(occupancy.rooms == 1)
            let growth = Self.residentKiB() - before
            #expect(growth < 32 * 1024, "RSS grew by \(growth) KiB over 1 000 cycles")
            print("churn: RSS before \(before) KiB, after \(before + growth) KiB, growth \(growth) KiB")
        }
    }

    @Test func silentHalfLineAndMidLoginClientsAreCleanedUp() async throws {
        try await withTestServer(configure: Self.productionLimits) { server in
            let honest = try await HonestPair.join(server)
            let silent = try await server.connectAndGreet(from: "127.0.207.1")
            let half = try await server.connectAndGreet(from: "127.0.207.2")
            try await half.sendRaw(Array("alice@exam".utf8))
            let quitter = try await server.connectAndGreet(from: "127.0.207.3")
            try await quitter.send("quitter@example.com")
            try await quitter.readUntil("*** Enter OTP code: ***")
            await quitter.close()
            #expect(try await silent.waitForClose(timeout: .seconds(10)) == ["ERROR: Login timed out."])
            #expect(try await half.waitForClose(timeout: .seconds(10)) == ["ERROR: Login timed out."])
            _ = try await server.waitForOccupancy {
                $0.connections == 2 && $0.ipSlots == 2 && $0.pendingCodes == 0
            }
            try await honest.stillChatting("after idlers")
        }
    }
}
