import ChatCore
import Testing

@testable import ChatHub

/// What a node writes into the hub log is what every node reads back.
@Suite struct LogEntryCodingTests {
    @Test func everyCommandReadsBackAsWritten() throws {
        let address = SessionAddress(id: SessionIDSpace.firstID(of: 7) + 41, shard: 3)
        let commands: [HubCommand] = [
            .admit(address, ip: "203.0.113.7", display: "203.0.113.7"),
            .release(address.id),
            .requestCode(address, emailKey: "a@example.com", ip: "203.0.113.7"),
            .codeUsed(emailKey: "a@example.com"),
            .login(address, username: "alice", emailKey: "a@example.com", ip: "203.0.113.7", isOperator: true),
            .say(address.id, text: "hello, wörld ✓", isAction: false),
            .say(address.id, text: "waves", isAction: true),
            .say(address.id, text: "", isAction: false),
            .join(address.id, room: RoomName("#ops")!),
            .create(address.id, room: RoomName("#den")!, isPrivate: true),
            .leave(address.id),
            .invite(address.id, target: "bob"),
            .kick(address.id, target: "bob"),
            .setTopic(address.id, text: "topic"),
            .privateMessage(address.id, target: "bob", text: "psst"),
            .ban(address.id, target: "bob", minutes: 10),
            .unban(address.id, target: "bob@example.com"),
            .wall(address.id, text: "maintenance"),
            .nodeDown(7),
            .reannounce(
                7,
                [
                    Reannouncement(id: address.id, ip: "203.0.113.7"),
                    Reannouncement(
                        id: address.id + 1, ip: "203.0.113.8",
                        member: Member(
                            name: "Alice", key: "alice", address: SessionAddress(id: address.id + 1, shard: 2),
                            roomKey: "#den", emailKey: "a@example.com", ip: "203.0.113.8", isOperator: false),
                        room: RoomName("#Den")!, roomIsPrivate: true),
                ]),
            .sweep,
            .shutdown,
        ]
        for command in commands {
            #expect(try LogEntryCoding.decode(LogEntryCoding.encode(command)) == command, "\(command)")
        }
        // A chat line is the compact form: a tag, 8 bytes of id, 1 of action, the text.
        #expect(LogEntryCoding.encode(.say(1, text: "hi", isAction: false)).count == 12)
    }

    @Test func anEntryThisVersionCannotReadIsRefusedNotMisread() {
        #expect(throws: (any Error).self) { try LogEntryCoding.decode(Array(#"{"teleport":{"_0":1}}"#.utf8)) }
        #expect(throws: (any Error).self) { try LogEntryCoding.decode([LogEntryCoding.sayTag, 0, 1]) }
        #expect(throws: (any Error).self) { try LogEntryCoding.decode([]) }
    }
}
