import ChatCore
import ChatTestSupport
import NIOCore
import NIOEmbedded
import Testing

@testable import ChatServer

/// The hub's decisions without sockets (its lines are queued on a shard nobody drains).
@Suite struct ChatHubTests {
    let hub = ChatHub(eventLoops: [EmbeddedEventLoop()], limits: .init(maxConnectionsPerIP: 1, historySize: 10))

    private func login(_ name: String, operator isOperator: Bool = false, ip: String) -> SessionID {
        let id = hub.makeSessionID()
        let identity = ChatHub.Identity(
            username: name, email: EmailAddress("\(name)@example.com")!, ip: ip, isOperator: isOperator)
        _ = hub.login(id, as: identity, shard: 0)
        return id
    }

    @Test func anEventLoopOfAnotherGroupHasNoShard() throws {
        let own = EmbeddedEventLoop()
        let hub = ChatHub(eventLoops: [own], limits: .init(maxConnectionsPerIP: 1, historySize: 10))
        #expect(hub.shard(for: own)?.index == 0)
        #expect(hub.shard(for: EmbeddedEventLoop()) == nil)
    }

    @Test func bansEndWhenTheyExpire() async throws {
        let opal = login("opal", operator: true, ip: "10.0.0.1")
        _ = login("bob", ip: "10.0.0.2")
        let result = hub.ban(
            opal, target: "bob", for: .milliseconds(300), notice: "bye", confirmation: { "banned \($0)" })
        #expect((try? result.get())?.user == "bob")
        let bob = EmailAddress("bob@example.com")!
        #expect(hub.isBanned(email: bob))
        #expect(hub.openConnection(ip: "10.0.0.2") == .banned)
        try await Task.sleep(for: .milliseconds(400))
        #expect(!hub.isBanned(email: bob))
        #expect(hub.openConnection(ip: "10.0.0.2") == .admitted)
        hub.sweep()
        #expect((try? hub.bans(opal).get())?.isEmpty == true)
    }

    @Test func invitationsEndWhenTheRoomDisappears() throws {
        let alice = login("alice", ip: "10.0.0.1")
        let bob = login("bob", ip: "10.0.0.2")
        let secret = RoomName("#secret")!
        #expect(hub.create(alice, room: secret, isPrivate: true) == nil)
        #expect((try? hub.invite(alice, target: "bob").get())?.room == "#secret")
        #expect(hub.roomListings(for: bob).map(\.name) == ["#general", "#secret"])
        #expect(hub.leave(alice) == nil)  // the room empties and disappears
        #expect(hub.roomListings(for: bob).map(\.name) == ["#general"])
        // A new room of the same name does not inherit the old invitation.
        #expect(hub.create(alice, room: secret, isPrivate: true) == nil)
        #expect(hub.join(bob, room: secret) == .privateRoom("#secret"))
    }

    @Test func logoutForgetsEverything() {
        let alice = login("alice", ip: "10.0.0.1")
        _ = hub.create(alice, room: RoomName("#den")!, isPrivate: true)
        hub.logout(alice)
        #expect(hub.snapshot() == .init(connections: 0, ipSlots: 0, onlineUsers: 0, rooms: 1))
    }
}
