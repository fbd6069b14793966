import ChatCore
import ChatTestSupport
import Testing

@testable import ChatHub
@testable import ChatServer

@Suite(.serialized) struct RoomManagementTests {
    @Test func privateRoomsAreInvisibleAndClosedToTheUninvited() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            let eve = try await server.login("eve")
            try await alice.readUntil("*** eve joined the room ***")
            try await bob.readUntil("*** eve joined the room ***")
            try await alice.send("/create #secret private")
            #expect(
                try await alice.readLines(2) == [
                    "*** You created #secret (private); you are its owner ***", "*** You joined #secret ***",
                ])

            try await eve.send("/rooms")
            #expect(
                try await eve.readUntil("  - #general [public] (2 members) (current)").last == "Available Rooms (1):")
            try await eve.send("/join #SECRET")
            #expect(try await eve.readLine() == "ERROR: #secret is private. Ask a member for an invite.")
            try await eve.send("/create #secret")
            #expect(try await eve.readLine() == "ERROR: #secret is private. Ask a member for an invite.")

            try await bob.readUntil("*** alice left the room ***")
            try await alice.send("/invite bob")
            #expect(try await alice.readLine() == "*** You invited bob to #secret ***")
            #expect(try await bob.readLine() == "*** alice invited you to #secret. Type /join #secret to enter. ***")
            try await bob.send("/rooms")
            #expect(
                try await bob.readLines(3) == [
                    "Available Rooms (2):",
                    "  - #general [public] (2 members) (current)",
                    "  - #secret [private] (1 members)",
                ])
            try await bob.send("/join #secret")
            try await bob.readUntil("*** You joined #secret ***")
            #expect(try await alice.readLine() == "*** bob joined the room ***")

            // Any member may invite; nobody outside sees the room's lines.
            try await bob.send("/invite alice")
            #expect(try await bob.readLine() == "ERROR: alice is already in #secret.")
            try await alice.send("psst")
            #expect(try await bob.readLine() == "[alice]: psst")
            #expect(try await alice.readLine() == "[alice]: psst")
            #expect(try await eve.linesUntilCaughtUp().allSatisfy { !$0.contains("psst") })

            // Invitations only exist in private rooms.
            try await eve.send("/invite bob")
            #expect(try await eve.readLine() == "ERROR: You are not in a private room.")
            try await alice.send("/invite nobody")
            #expect(try await alice.readLine() == "ERROR: User 'nobody' is not online.")
        }
    }

    @Test func aKickedUsersInvitationIsRevoked() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            let carol = try await server.login("carol")
            try await alice.send("/create #secret private")
            try await alice.readUntil("*** You joined #secret ***")
            for invitee in ["bob", "carol"] {
                try await alice.send("/invite \(invitee)")
                try await alice.readUntil("*** You invited \(invitee) to #secret ***")
            }
            for client in [bob, carol] {
                try await client.readUntil("*** alice invited you to #secret. Type /join #secret to enter. ***")
                try await client.send("/join #secret")
                try await client.readUntil("*** You joined #secret ***")
            }
            try await alice.readUntil("*** carol joined the room ***")

            // Only the owner (or an operator) may kick.
            try await carol.send("/kick bob")
            #expect(try await carol.readLine() == "ERROR: Only the owner of #secret or a server operator can do that.")

            try await bob.readUntil("*** carol joined the room ***")
            try await alice.send("/kick bob")
            #expect(try await bob.readLine() == "*** You were kicked from #secret by alice ***")
            #expect(try await bob.readLine() == "*** You joined #general ***")
            #expect(try await alice.readLine() == "*** bob was kicked from the room by alice ***")
            #expect(try await carol.readUntil("*** bob was kicked from the room by alice ***").isEmpty)

            try await bob.send("/join #secret")
            #expect(try await bob.readLine() == "ERROR: #secret is private. Ask a member for an invite.")
            try await bob.send("/rooms")
            #expect(
                try await bob.readLines(2) == ["Available Rooms (1):", "  - #general [public] (1 members) (current)"])

            try await alice.send("/kick alice")
            #expect(try await alice.readLine() == "ERROR: You cannot do that to yourself.")
            try await alice.send("/kick bob")
            #expect(try await alice.readLine() == "ERROR: bob is not in #secret.")
        }
    }

    /// A room's owner is an address: when the owner leaves, nobody else owns the room, and
    /// the owner who comes back, under any name, owns it again.
    @Test func ownershipStaysWithTheOwnersAddress() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            let carol = try await server.login("carol")
            try await alice.send("/join #club")
            try await alice.readUntil("*** You joined #club ***")
            try await bob.send("/join #club")
            try await bob.readUntil("*** You joined #club ***")
            try await carol.send("/join #club")
            try await carol.readUntil("*** You joined #club ***")
            try await bob.readUntil("*** carol joined the room ***")

            try await carol.send("/who")
            #expect(
                try await carol.readLines(4) == [
                    "Members of #club (3):", "  - alice (owner)", "  - bob", "  - carol (you)",
                ])

            await alice.close()
            #expect(try await carol.readLine() == "*** alice left the room ***")
            try await bob.send("/who")
            #expect(try await bob.readUntil("  - carol").suffix(2) == ["Members of #club (2):", "  - bob (you)"])
            try await bob.send("/kick carol")
            #expect(try await bob.readLine() == "ERROR: Only the owner of #club or a server operator can do that.")
            // alice back, under another name: the owner again.
            let alicia = try await server.login("alicia", email: "alice@example.com")
            try await alicia.send("/join #club")
            try await alicia.readUntil("*** You joined #club ***")
            try await alicia.send("/who")
            #expect(
                try await alicia.readLines(4) == [
                    "Members of #club (3):", "  - alicia (owner) (you)", "  - bob", "  - carol",
                ])
            try await alicia.send("/kick carol")
            try await carol.readUntil("*** alicia joined the room ***")
            #expect(try await carol.readLine() == "*** You were kicked from #club by alicia ***")
        }
    }

    @Test func topics() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            try await alice.send("/join #books")
            try await alice.readUntil("*** You joined #books ***")
            try await alice.send("/topic")
            #expect(try await alice.readLine() == "*** No topic is set for #books ***")
            try await alice.send("/topic Reading \u{1B}[31mDune\u{1B}[0m this week")
            #expect(try await alice.readLine() == "*** alice set the topic: Reading Dune this week ***")

            try await bob.readUntil("*** alice left the room ***")
            try await bob.send("/join #books")
            #expect(
                try await bob.readLines(2) == [
                    "*** You joined #books ***", "*** Topic for #books: Reading Dune this week ***",
                ])
            try await bob.send("/topic")
            #expect(try await bob.readLine() == "*** Topic for #books: Reading Dune this week ***")
            try await bob.send("/topic mine now")
            #expect(try await bob.readLine() == "ERROR: Only the owner of #books or a server operator can do that.")
            try await bob.send("/topic " + String(repeating: "t", count: 257))
            #expect(try await bob.readLine() == "ERROR: Topic too long. Maximum length is 256 characters.")
            try await bob.send("/create #books")
            #expect(try await bob.readLine() == "ERROR: Room #books already exists.")
        }
    }

    @Test func meReplyAndIgnore() async throws {
        try await withTestServer { server in
            let trio = try await server.loginTogether(["alice", "bob", "carol"])
            let (alice, bob, carol) = (trio[0], trio[1], trio[2])

            try await alice.send("/me waves")
            #expect(try await bob.readLine() == "* alice waves")
            #expect(try await alice.readLine() == "* alice waves")

            try await bob.send("/reply hello?")
            #expect(try await bob.readLine() == "ERROR: Nobody has sent you a private message yet.")
            try await alice.send("/msg bob lunch?")
            #expect(try await bob.readLine() == "[alice]: [PM] lunch?")
            try await bob.send("/reply sure")
            #expect(try await bob.readLine() == "[PM to alice]: sure")
            try await alice.readUntil("[bob]: [PM] sure")

            try await carol.readUntil("* alice waves")
            try await carol.send("/ignore")
            #expect(try await carol.readLine() == "*** You are not ignoring anyone ***")
            try await carol.send("/ignore ALICE")
            #expect(try await carol.readLine() == "*** You are now ignoring alice ***")
            try await carol.send("/ignore")
            #expect(try await carol.readLines(2) == ["Ignored Users (1):", "  - alice"])
            try await alice.send("spam")
            try await alice.send("/msg carol more spam")
            try await alice.send("/me spams")
            // The ignored user is not told: everything looks normal to them.
            let aliceSaw = try await alice.readLines(3)
            #expect(aliceSaw == ["[alice]: spam", "[PM to carol]: more spam", "* alice spams"])
            try await bob.send("still here")
            #expect(try await carol.readLine() == "[bob]: still here")
            #expect(try await bob.readLines(3) == ["[alice]: spam", "* alice spams", "[bob]: still here"])

            try await carol.send("/unignore alice")
            #expect(try await carol.readLine() == "*** You are no longer ignoring alice ***")
            try await carol.send("/unignore alice")
            #expect(try await carol.readLine() == "ERROR: You are not ignoring alice.")
            try await carol.send("/ignore carol")
            #expect(try await carol.readLine() == "ERROR: You cannot do that to yourself.")
            try await alice.send("back")
            #expect(try await carol.readLine() == "[alice]: back")
        }
    }

    /// Issue "One hub", fix 1: a replay leaves out the lines of users one ignores, on
    /// /join, /leave and when kicked back to #general.
    @Test func historyReplayLeavesOutIgnoredUsers() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            let bob = try await server.login("bob")
            let carol = try await server.login("carol")
            try await alice.readUntil("*** carol joined the room ***")
            try await carol.send("/ignore alice")
            try await carol.readUntil("*** You are now ignoring alice ***")
            try await carol.send("/create #den")
            try await carol.readUntil("*** You joined #den ***")

            try await alice.send("/join #lobby")
            try await alice.readUntil("*** You joined #lobby ***")
            try await alice.send("spam in lobby")
            try await alice.send("/me spams the lobby")
            try await alice.readUntil("* alice spams the lobby")
            try await carol.send("/join #lobby")
            #expect(try await carol.readLine() == "*** You joined #lobby ***")
            try await alice.readUntil("*** carol joined the room ***")
            // Nothing but alice's lines in the history: no history block at all.
            try await carol.send("/who")
            #expect(try await carol.readLine().hasPrefix("Members of #lobby"))

            try await bob.send("bob in general")
            try await alice.send("/leave")
            try await alice.readUntil("*** You left #lobby and returned to #general ***")
            try await alice.send("alice in general")
            try await bob.readUntil("[alice]: alice in general")
            try await carol.readUntil("*** alice left the room ***")
            try await carol.send("/leave")
            let replay = try await carol.readUntil(ServerLine.historyFooter)
            #expect(replay.first == "*** You left #lobby and returned to #general ***")
            #expect(replay.contains("[bob]: bob in general"))
            #expect(!replay.contains { $0.contains("alice in general") })
            #expect(replay.contains(ServerLine.historyHeader))

            // Kicked back to #general: the same replay rule.
            try await bob.send("/create #bobs")
            try await bob.readUntil("*** You joined #bobs ***")
            try await carol.send("/join #bobs")
            try await carol.readUntil("*** You joined #bobs ***")
            try await bob.readUntil("*** carol joined the room ***")
            try await bob.send("/kick carol")
            let kicked = try await carol.readUntil(ServerLine.historyFooter)
            #expect(kicked.contains("[bob]: bob in general"))
            #expect(!kicked.contains { $0.contains("alice") })
            // Without the ignore, alice's lines are replayed to others.
            try await bob.send("/leave")
            let bobReplay = try await bob.readUntil(ServerLine.historyFooter)
            #expect(bobReplay.contains("[alice]: alice in general"))
        }
    }

    /// Issue "One hub", fix 2: an invitation belongs to the invitee's e-mail address.
    @Test func anInvitationSurvivesAReconnectAndStaysWithItsAddress() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            var bob = try await server.login("bob", from: "127.0.1.2")
            try await alice.send("/create #secret private")
            try await alice.readUntil("*** You joined #secret ***")
            try await alice.send("/invite bob")
            try await alice.readUntil("*** You invited bob to #secret ***")
            try await bob.readUntil("*** alice invited you to #secret. Type /join #secret to enter. ***")

            try await bob.send("/quit")
            _ = try await bob.waitForClose()
            _ = try await server.waitForOccupancy { $0.onlineUsers == 1 }
            // Someone else takes the name: the invitation is not theirs.
            let impostor = try await server.login("bob", email: "mallory@example.com", from: "127.0.1.3")
            try await impostor.send("/join #secret")
            #expect(try await impostor.readLine() == "ERROR: #secret is private. Ask a member for an invite.")
            try await impostor.send("/rooms")
            #expect(
                try await impostor.readLines(2) == [
                    "Available Rooms (1):", "  - #general [public] (1 members) (current)",
                ])
            try await impostor.send("/quit")
            _ = try await impostor.waitForClose()
            _ = try await server.waitForOccupancy { $0.onlineUsers == 1 }

            // The invitee back, under another name, from the same address: still invited.
            bob = try await server.login("robert", email: "bob@example.com", from: "127.0.1.2")
            try await bob.send("/join #secret")
            #expect(try await bob.readLine() == "*** You joined #secret ***")
            try await alice.readUntil("*** robert joined the room ***")
        }
    }

    @Test func helpExplainsOneCommand() async throws {
        try await withTestServer { server in
            let alice = try await server.login("alice")
            try await alice.send("/help kick")
            #expect(try await alice.readLine() == "Usage: /kick <user>")
            #expect(try await alice.readLine().hasPrefix("  Room owners"))
            try await alice.send("/help teleport")
            #expect(
                try await alice.readLine() == "ERROR: No such command: /teleport. Type /help for available commands.")
        }
    }
}

@Suite(.serialized) struct OperatorTests {
    static func admin(_ configuration: inout ServerConfiguration) {
        configuration.adminEmails = ["root@example.com"]
    }

    @Test func operatorsAreMarkedAndOthersCannotUseOperatorCommands() async throws {
        try await withTestServer(configure: Self.admin) { server in
            let root = try await server.login("opal", email: "ROOT@example.com")
            let bob = try await server.login("bob")
            try await bob.send("/users")
            #expect(try await bob.readLines(3) == ["Online Users (2):", "  - bob (you)", "  - opal (operator)"])
            for command in ["/ban opal", "/unban root@example.com", "/bans", "/wall hi"] {
                try await bob.send(command)
                let word = String(command.prefix { $0 != " " })
                #expect(try await bob.readLine() == "ERROR: Only server operators can use \(word).")
            }
            try await root.send("/wall Maintenance in 5 minutes")
            #expect(try await bob.readLine() == "*** Announcement from opal: Maintenance in 5 minutes ***")
            #expect(
                try await root.readUntil("*** Announcement from opal: Maintenance in 5 minutes ***").allSatisfy {
                    !$0.contains("Announcement")
                })
        }
    }

    @Test func operatorsKickInAnyRoom() async throws {
        try await withTestServer(configure: Self.admin) { server in
            let root = try await server.login("opal", email: "root@example.com")
            let bob = try await server.login("bob")
            try await bob.send("/create #den private")
            try await bob.readUntil("*** You joined #den ***")
            try await root.readUntil("*** bob left the room ***")
            try await root.send("/kick bob")
            // root is not in #den: it sees bob arrive in #general, then its confirmation.
            #expect(
                try await root.readLines(2) == [
                    "*** bob joined the room ***", "*** bob was kicked from the room by opal ***",
                ])
            #expect(try await bob.readLine() == "*** You were kicked from #den by opal ***")
            try await root.send("/kick bob")
            #expect(try await root.readLine() == "ERROR: Nobody can be kicked from the default room.")
        }
    }

    @Test func aBannedUserCannotComeBackFromTheSameAddressOrIP() async throws {
        try await withTestServer(configure: Self.admin) { server in
            let root = try await server.login("opal", email: "root@example.com")
            let bob = try await server.login("bob", from: "127.0.0.50")
            try await root.readUntil("*** bob joined the room ***")
            try await root.send("/ban bob 30")
            #expect(try await root.readLine() == "*** bob is banned for 30 minutes (e-mail address and IP address) ***")
            #expect(
                try await bob.waitForClose() == ["*** You have been banned from this server by opal for 30 minutes ***"]
            )
            #expect(try await root.readLine() == "*** bob left the room ***")

            // Same IP: refused at connect.
            let sameIP = try await server.connect(from: "127.0.0.50")
            #expect(try await sameIP.waitForClose() == ["ERROR: You are banned from this server."])
            // Same address from another IP: refused when asking for a code.
            let sameEmail = try await server.connectAndGreet(from: "127.0.0.51")
            try await sameEmail.send("bob@example.com")
            #expect(
                try await sameEmail.waitForClose() == [
                    "*** Please wait while we verify your email address... ***",
                    "ERROR: You are banned from this server.",
                ])

            try await root.send("/bans")
            #expect(
                try await root.readLines(3) == [
                    "Active Bans (2):", "  - 127.0.0.50 (30 minutes left)", "  - bob@example.com (30 minutes left)",
                ])
            try await root.send("/unban BOB@example.com")
            #expect(try await root.readLine() == "*** Ban lifted: BOB@example.com ***")
            try await root.send("/unban 127.0.0.50")
            #expect(try await root.readLine() == "*** Ban lifted: 127.0.0.50 ***")
            try await root.send("/unban 127.0.0.50")
            #expect(try await root.readLine() == "ERROR: No active ban for 127.0.0.50.")
            _ = try await server.login("bob", from: "127.0.0.50")
        }
    }
}
