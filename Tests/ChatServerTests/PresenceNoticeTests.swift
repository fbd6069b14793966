import ChatCore
import ChatTestSupport
import Testing

@testable import ChatServer

/// `PRESENCE_NOTICE_MAX_MEMBERS`: up to the threshold a room announces who comes and goes;
/// above it, arrivals and departures are quiet (IRC's auditorium mode). Moderation is not.
@Suite(.serialized) struct PresenceNoticeTests {
    @Test func joinsAndLeavesAreAnnouncedUpToTheThresholdAndNotAbove() async throws {
        try await withTestServer(configure: {
            $0.presenceNoticeMaxMembers = 2
            $0.adminEmails = ["alice@example.com"]
        }) { server in
            let alice = try await server.login("alice")
            // Two members: at the threshold, announced.
            let bob = try await server.login("bob")
            #expect(try await alice.readLine() == ServerLine.joinedRoom("bob"))
            // A third: above it, quiet for everyone.
            let carol = try await server.login("carol")
            try await alice.send("after carol")
            #expect(try await alice.readLine() == "[alice]: after carol")
            #expect(try await bob.readLine() == "[alice]: after carol")
            // The room of three loses carol: quiet too (three counting her).
            await carol.close()
            _ = try await server.waitForOccupancy { $0.onlineUsers == 2 }
            try await alice.send("after carol left")
            #expect(try await bob.readLine() == "[alice]: after carol left")
            #expect(try await alice.readLine() == "[alice]: after carol left")
            // Back at two: bob's departure is announced.
            await bob.close()
            #expect(try await alice.readLine() == ServerLine.leftRoom("bob"))

            // A kick is announced in a big room all the same.
            let dave = try await server.login("dave")
            #expect(try await alice.readLine() == ServerLine.joinedRoom("dave"))
            let erin = try await server.login("erin")
            try await alice.send("/create #big")
            try await alice.readUntil("*** You joined #big ***")
            for user in [dave, erin] {
                try await user.send("/join #big")
                try await user.readUntil("*** You joined #big ***")
            }
            try await alice.send("/kick erin")
            try await dave.readUntil(ServerLine.wasKicked("erin", by: "alice"))
        }
    }
}
