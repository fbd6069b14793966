import ChatCore
import ChatTestSupport
import Testing

@testable import ChatServer

@Suite(.serialized) struct ChatTests {
    @Test func aMessageReachesEveryoneInTheRoomSenderIncluded() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            #expect(try await alice.readLine() == "*** bob joined the room ***")
            try await alice.send("  hello everyone!  ")
            #expect(try await alice.readLine() == "[alice]: hello everyone!")
            #expect(try await bob.readLine() == "[alice]: hello everyone!")
            // Empty lines are ignored.
            try await alice.send("   ")
            try await alice.sendRaw(Array("\r\n\n".utf8))
            // alice's round trip comes after her empty lines: the server has read them.
            #expect(try await alice.linesUntilCaughtUp() == [])
            #expect(try await bob.linesUntilCaughtUp() == [])
        }
    }

    @Test func anAwayUserIsShownAndEachSenderToldOnceUntilTheyAreBack() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            try await alice.readUntil("*** bob joined the room ***")
            try await alice.send("/away lunch")
            #expect(try await alice.readLine() == "*** You are away: lunch ***")
            try await bob.send("/users")
            #expect(try await bob.readLines(3) == ["Online Users (2):", "  - alice (away: lunch)", "  - bob (you)"])
            try await bob.send("/who")
            #expect(
                try await bob.readLines(3) == ["Members of #general (2):", "  - alice (away: lunch)", "  - bob (you)"])
            try await bob.send("/msg alice hi")
            #expect(try await bob.readLines(2) == ["[PM to alice]: hi", "*** alice is away: lunch ***"])
            #expect(try await alice.readLine() == "[bob]: [PM] hi")
            try await bob.send("/msg alice again")
            #expect(try await bob.readLine() == "[PM to alice]: again")
            #expect(try await alice.readLine() == "[bob]: [PM] again")
            #expect(try await bob.linesUntilCaughtUp() == [])
            // Sending anything ends it.
            try await alice.send("I am back")
            #expect(try await alice.readLines(2) == ["*** You are back ***", "[alice]: I am back"])
            #expect(try await bob.readLine() == "[alice]: I am back")
            try await bob.send("/users")
            #expect(try await bob.readLines(3) == ["Online Users (2):", "  - alice", "  - bob (you)"])
            // So does /away alone; a message is sanitised like any text.
            try await alice.send("/away \u{1B}[31mbrb")
            #expect(try await alice.readLine() == "*** You are away: brb ***")
            try await alice.send("/away")
            #expect(try await alice.readLine() == "*** You are back ***")
        }
    }

    /// `/nick` (SPEC.md §12): the room is told, the old name is free at once, and what others
    /// hold by name (an ignore list, `/reply`) and the room's ownership follow the user.
    @Test func aUserTakesANewNameAndWhatOthersHoldByItFollows() async throws {
        try await withTestServer { server in
            let trio = try await server.loginTogether(["alice", "bob", "carol"])
            let (alice, bob, carol) = (trio[0], trio[1], trio[2])
            try await bob.send("/ignore alice")
            #expect(try await bob.readLine() == "*** You are now ignoring alice ***")
            try await alice.send("/msg carol psst")
            #expect(try await alice.readLine() == "[PM to carol]: psst")
            #expect(try await carol.readLine() == "[alice]: [PM] psst")

            // The rules of a login.
            try await alice.send("/nick BOB")
            #expect(try await alice.readLine() == "ERROR: Username 'BOB' is already taken.")
            try await alice.send("/nick al!ce")
            #expect(try await alice.readLine() == UserError.invalidUsername(.characters).line)
            try await alice.send("/nick")
            #expect(try await alice.readLine() == "ERROR: Usage: /nick <name>")
            try await alice.send("/nick alice")
            #expect(try await alice.readLine() == "ERROR: You are already known as alice.")

            try await alice.send("/nick alicia")
            for client in [alice, bob, carol] {
                #expect(try await client.readLine() == "*** alice is now known as alicia ***")
            }
            // bob still ignores her, under her new name.
            try await bob.send("/ignore")
            #expect(try await bob.readLines(2) == ["Ignored Users (1):", "  - alicia"])
            try await alice.send("hello")
            #expect(try await alice.readLine() == "[alicia]: hello")
            #expect(try await carol.readLine() == "[alicia]: hello")
            #expect(try await bob.linesUntilCaughtUp() == [])
            // carol's /reply goes to alicia; the old name is nobody's.
            try await carol.send("/reply hi back")
            #expect(try await carol.readLine() == "[PM to alicia]: hi back")
            #expect(try await alice.readLine() == "[carol]: [PM] hi back")
            try await carol.send("/msg alice x")
            #expect(try await carol.readLine() == "ERROR: User 'alice' is not online.")
            let newcomer = try await server.login("alice", email: "newcomer@example.com")
            try await newcomer.readUntil("*** ---------------------------- ***")
            try await newcomer.send("/users")
            let users = try await newcomer.readLines(5)
            #expect(
                users == [
                    "Online Users (4):", "  - alice (you)", "  - alicia", "  - bob", "  - carol",
                ])

            // A room's owner stays its owner under a new name.
            try await alice.send("/create #den")
            try await alice.readUntil("*** You joined #den ***")
            try await alice.send("/nick ali")
            #expect(try await alice.readLine() == "*** alicia is now known as ali ***")
            try await alice.send("/who")
            #expect(try await alice.readLines(2) == ["Members of #den (1):", "  - ali (owner) (you)"])
        }
    }

    @Test func helpListsEveryCommand() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            try await alice.send("/HELP")
            let lines = try await alice.readLines(ServerLine.help.count)
            #expect(lines == ServerLine.help)
            for command in ["/help", "/users", "/rooms", "/join", "/leave", "/msg", "/quit"] {
                #expect(lines.contains { $0.contains(command) })
            }
        }
    }

    @Test func usersAreSortedAndTheCallerMarked() async throws {
        try await withTestServer { server in
            let charlie = try await server.login("charlie")
            _ = try await server.login("Bob")
            _ = try await server.login("alice")
            try await charlie.send("/users")
            #expect(
                try await charlie.readUntil("  - charlie (you)").suffix(3) == [
                    "Online Users (3):", "  - alice", "  - Bob",
                ])
        }
    }

    @Test func roomsAreListedSortedWithCountsAndTheCurrentOne() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            let carol = try await server.login("carol")
            try await bob.send("/join #zeta")
            try await bob.readUntil("*** You joined #zeta ***")
            try await carol.send("/join Alpha")
            try await carol.readUntil("*** You joined #Alpha ***")
            try await alice.readUntil("*** carol left the room ***")
            try await alice.send("/rooms")
            #expect(
                try await alice.readLines(4) == [
                    "Available Rooms (3):",
                    "  - #Alpha [public] (1 members)",
                    "  - #general [public] (1 members) (current)",
                    "  - #zeta [public] (1 members)",
                ])
        }
    }

    @Test func joiningAndLeavingRoomsWithTheirNotices() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            try await alice.readUntil("*** bob joined the room ***")

            try await bob.send("/join gaming")
            #expect(try await bob.readLine() == "*** You joined #gaming ***")
            #expect(try await alice.readLine() == "*** bob left the room ***")

            try await alice.send("/JOIN #GAMING")
            #expect(try await alice.readLine() == "*** You joined #gaming ***")
            #expect(try await bob.readLine() == "*** alice joined the room ***")

            try await alice.send("/join #gaming")
            #expect(try await alice.readLine() == "ERROR: You are already in #gaming.")

            try await alice.send("/leave")
            #expect(try await alice.readLine() == "*** You left #gaming and returned to #general ***")
            #expect(try await bob.readLine() == "*** alice left the room ***")

            try await alice.send("/leave")
            #expect(try await alice.readLine() == "ERROR: You are already in the default room.")

            for bad in ["/join #bad name", "/join #" + String(repeating: "x", count: 33), "/join #b@d"] {
                try await alice.send(bad)
                let reply = try await alice.readLine()
                #expect(reply.hasPrefix("ERROR: "), "\(bad) -> \(reply)")
            }
            try await alice.send("/join")
            #expect(try await alice.readLine() == "ERROR: Usage: /join <room>")
        }
    }

    /// With `ROOM_KEEP_EMPTY_DAYS=0`, as before rooms were kept.
    /// A room left empty is kept (marked in `/rooms`) until its owner, under any name, or an
    /// operator drops it; creating rooms is bounded in all and per owner.
    @Test func anEmptyRoomIsKeptUntilDroppedAndRoomsAreBounded() async throws {
        try await withTestServer(configure: {
            $0.roomsPerOwner = 2
            $0.roomsMax = 4
        }) { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            try await bob.send("/create #den private")
            try await bob.readUntil("*** You joined #den ***")
            try await bob.send("/topic our den")
            try await bob.readUntil(ServerLine.topicSet(by: "bob", to: "our den"))
            try await bob.send("/invite alice")
            try await bob.readUntil("*** You invited alice to #den ***")
            try await bob.send("/leave")
            try await bob.readUntil("*** You left #den and returned to #general ***")
            #expect(server.server.occupancy.rooms == 2)
            try await bob.send("/rooms")
            #expect(
                try await bob.readLines(3) == [
                    "Available Rooms (2):", "  - #den [private] (empty)", "  - #general [public] (2 members) (current)",
                ])
            // Its invitation and topic stayed: alice, invited, enters it and is told the topic.
            try await alice.readUntil("*** bob joined the room ***")
            try await alice.send("/join #den")
            let entered = try await alice.readUntil(ServerLine.topic("our den", of: "#den"))
            #expect(entered.contains("*** You joined #den ***"), "\(entered)")
            try await alice.send("/drop #den")
            let refused = try await alice.readLine()
            #expect(refused == "ERROR: Only the owner of #den or a server operator can do that.")
            try await bob.readUntil("*** alice left the room ***")
            try await bob.send("/drop #den")
            #expect(try await bob.readLine() == "ERROR: #den is not empty; only an empty room can be dropped.")
            try await alice.send("/leave")
            try await alice.readUntil("*** You left #den and returned to #general ***")
            try await bob.readUntil("*** alice joined the room ***")
            try await bob.send("/drop #den")
            #expect(try await bob.readLine() == "*** #den was dropped ***")
            try await bob.send("/drop #den")
            #expect(try await bob.readLine() == "ERROR: There is no room #den.")
            try await bob.send("/drop #general")
            #expect(try await bob.readLine() == "ERROR: #general cannot be dropped.")

            // Bounded: two rooms per owner, four in all (#general included).
            for room in ["#a", "#b"] {
                try await bob.send("/create \(room)")
                try await bob.readUntil("*** You joined \(room) ***")
            }
            try await bob.send("/create #c")
            #expect(try await bob.readLine() == "ERROR: You already own 2 rooms. Use /drop <room> to remove one first.")
            try await alice.send("/join #x")
            try await alice.readUntil("*** You joined #x ***")
            try await alice.send("/create #y")
            #expect(try await alice.readLine() == "ERROR: Too many rooms on this server. Please try again later.")
        }
    }

    /// With `ROOM_KEEP_EMPTY_DAYS=0`, as before rooms were kept.
    @Test func roomsAreIsolatedAndAnEmptyRoomDisappears() async throws {
        try await withTestServer(configure: { $0.roomKeepEmptyDays = 0 }) { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            let carol = try await server.login("carol")
            try await bob.send("/join #gaming")
            try await bob.readUntil("*** You joined #gaming ***")
            try await bob.send("gg")
            #expect(try await bob.readLine() == "[bob]: gg")
            try await alice.send("hi general")
            #expect(try await carol.readUntil("[alice]: hi general").contains("[bob]: gg") == false)
            #expect(try await bob.linesUntilCaughtUp() == [])
            #expect(server.server.occupancy.rooms == 2)

            try await bob.send("/leave")
            try await bob.readUntil("*** You left #gaming and returned to #general ***")
            _ = try await server.waitForOccupancy { $0.rooms == 1 }
            try await alice.send("/rooms")
            #expect(
                try await alice.readUntil("  - #general [public] (3 members) (current)").last == "Available Rooms (1):")
        }
    }

    @Test func joiningReplaysRecentHistory() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            try await alice.send("/join #books")
            try await alice.readUntil("*** You joined #books ***")
            try await alice.send("first")
            try await alice.send("second")
            try await alice.readUntil("[alice]: second")

            let bob = try await server.login("bob")
            try await bob.send("/join #books")
            #expect(
                try await bob.readLines(5) == [
                    "*** You joined #books ***",
                    "*** --- History (last 5 min) --- ***",
                    "[alice]: first",
                    "[alice]: second",
                    "*** ---------------------------- ***",
                ])
            #expect(try await alice.readLine() == "*** bob joined the room ***")
            // Later lines arrive live, after the replay.
            try await alice.send("third")
            #expect(try await bob.readLine() == "[alice]: third")
        }
    }

    /// The replay on joining is written at once, and can be larger than `MAX_SENDQ_BYTES`
    /// (`HISTORY_SIZE=1000` lines of 1 000 characters are 1 MB against the default 256 kB;
    /// here 500 lines, twice the limit): a client that reads gets all of it, and is not
    /// taken for a slow consumer.
    @Test func aHistoryLargerThanTheSendQueueLimitReachesAJoiner() async throws {
        try await withTestServer(configure: {
            $0.maxSendQueueBytes = 262_144
            $0.historySize = 1_000
        }) { server in
            let alice = try await server.login("alice")
            let long = String(repeating: "x", count: 990)
            // In tens, each read back before the next: alice's own echoes never pile up past
            // the send queue's limit while a loaded machine (ThreadSanitizer) reads them slowly.
            for tens in 0..<50 {
                for index in tens * 10 + 1...tens * 10 + 10 { try await alice.send("\(index) \(long)") }
                try await alice.readUntil("[alice]: \(tens * 10 + 10) \(long)", timeout: .seconds(30))
            }
            let bob = try await server.login("bob")
            try await bob.send("/join #other")
            try await bob.readUntil("*** You joined #other ***")
            try await bob.send("/leave")
            try await bob.readUntil("*** --- History (last 5 min) --- ***")
            #expect(
                try await bob.readLines(500, timeout: .seconds(60)) == (1...500).map { "[alice]: \($0) \(long)" })
            #expect(try await bob.readLine() == "*** ---------------------------- ***")
        }
    }

    @Test func historyIsBoundedInCount() async throws {
        try await withTestServer(configure: { $0.historySize = 3 }) { server in
            let alice = try await server.login("alice")
            for index in 1...6 { try await alice.send("line \(index)") }
            try await alice.readUntil("[alice]: line 6")
            let carol = try await server.login("carol")
            try await carol.send("/join #other")
            try await carol.readUntil("*** You joined #other ***")
            try await carol.send("/leave")
            #expect(
                try await carol.readLines(6) == [
                    "*** You left #other and returned to #general ***",
                    "*** --- History (last 5 min) --- ***",
                    "[alice]: line 4",
                    "[alice]: line 5",
                    "[alice]: line 6",
                    "*** ---------------------------- ***",
                ])
        }
    }

    @Test func privateMessages() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("Bob")
            let carol = try await server.login("carol")
            try await bob.send("/join #elsewhere")
            try await bob.readUntil("*** You joined #elsewhere ***")

            try await alice.send("/msg bob Hey, how are you?")
            #expect(try await alice.readUntil("[PM to Bob]: Hey, how are you?").allSatisfy { !$0.contains("PM") })
            #expect(try await bob.readLine() == "[alice]: [PM] Hey, how are you?")
            #expect(try await carol.linesUntilCaughtUp().allSatisfy { !$0.contains("PM") })

            try await alice.send("/msg dave hello")
            #expect(try await alice.readLine() == "ERROR: User 'dave' is not online.")
            try await alice.send("/msg bob")
            #expect(try await alice.readLine() == "ERROR: Usage: /msg <username> <message>")
            try await alice.send("/msg alice me")
            #expect(try await alice.readLine() == "ERROR: You cannot send a private message to yourself.")
        }
    }

    @Test func unknownCommandsAndOverlongMessages() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            try await alice.send("/foo bar")
            #expect(try await alice.readLine() == "ERROR: Unknown command: /foo. Type /help for available commands.")
            try await alice.send(String(repeating: "x", count: 1025))
            #expect(try await alice.readLine() == "ERROR: Message too long. Maximum length is 1024 characters.")
            try await alice.send(String(repeating: "é", count: 1024))
            #expect(try await alice.readLine() == "[alice]: " + String(repeating: "é", count: 1024))
        }
    }

    @Test func anOverlongLineIsDiscardedWithAnError() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            try await alice.readUntil("*** bob joined the room ***")
            // 100 KB without a newline, in pieces, then the newline and a normal line.
            let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 10_000)
            for _ in 0..<10 { try await alice.sendRaw(chunk) }
            try await alice.sendRaw(Array("tail\nstill here\n".utf8))
            #expect(
                try await alice.readLine()
                    == "ERROR: Line too long. Maximum length is 4096 bytes; the line was discarded.")
            #expect(try await alice.readLine() == "[alice]: still here")
            #expect(try await bob.readLine() == "[alice]: still here")
        }
    }

    @Test func controlCharactersNeverReachOtherTerminals() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            try await alice.readUntil("*** bob joined the room ***")
            try await alice.sendRaw(Array("\u{1B}[2Jwiped\u{7}\u{202E}txt\n".utf8))
            #expect(try await bob.readLine() == "[alice]: wipedtxt")
            try await alice.sendRaw([0x62, 0x61, 0x64, 0xC3, 0x28, 0xFE, 0x0A])
            #expect(try await bob.readLine() == "[alice]: bad\u{FFFD}(\u{FFFD}")
        }
    }
}
