import ChatCore
import ChatTestSupport
import Foundation
import NIOCore
import NIOEmbedded
import Testing

@testable import ChatHub

/// The hub's decisions without sockets, locks or clocks: commands in, effects out, time
/// given.
@Suite struct HubStateTests {
    var state = HubState(configuration: .init(shardCount: 2, historySize: 10, maxConnectionsPerIP: 1))
    var now = LogTime(milliseconds: 1_700_000_000_000)
    private var nextID: SessionID = 1

    /// Admits and logs in a user on `shard`; returns their session.
    private mutating func login(
        _ name: String, operator isOperator: Bool = false, ip: String, shard: Int = 0
    )
        -> SessionAddress
    {
        let address = SessionAddress(id: nextID, shard: shard)
        nextID += 1
        #expect(answers(state.apply(.admit(address, ip: ip, display: ip), at: now)) == [.admission(.admitted)])
        let effects = state.apply(
            .login(address, username: name, emailKey: "\(name)@example.com", ip: ip, isOperator: isOperator), at: now)
        #expect(answers(effects) == [.login(.success(name))])
        return address
    }

    private func answers(_ effects: [HubEffect]) -> [HubAnswer] {
        effects.compactMap { if case .answer(_, let answer) = $0 { answer } else { nil } }
    }

    /// The lines each session is sent directly, as text.
    private func lines(_ effects: [HubEffect]) -> [SessionID: [String]] {
        var result: [SessionID: [String]] = [:]
        for effect in effects {
            switch effect {
            case .lines(let session, let lines), .disconnect(let session, let lines):
                result[session.id, default: []] += lines.map { String(buffer: $0).trimmingNewline }
            default: break
            }
        }
        return result
    }

    /// Logs in a user whose session belongs to `node` (a cluster replica's view).
    private mutating func login(_ name: String, onNode node: NodeNumber, ip: String) -> SessionAddress {
        let address = SessionAddress(id: SessionIDSpace.firstID(of: node) + nextID, shard: 0)
        nextID += 1
        _ = state.apply(.admit(address, ip: ip, display: ip), at: now)
        let effects = state.apply(
            .login(address, username: name, emailKey: "\(name)@example.com", ip: ip, isOperator: false), at: now)
        #expect(answers(effects) == [.login(.success(name))])
        return address
    }

    @Test mutating func anAwayUserTellsEachSenderOnceUntilBackAndSendingAnythingEndsIt() {
        let alice = login("alice", ip: "10.0.0.1")
        let bob = login("bob", ip: "10.0.0.2")
        let carol = login("carol", ip: "10.0.0.3")
        #expect(
            lines(state.apply(.setAway(alice.id, message: "lunch"), at: now)) == [
                alice.id: ["*** You are away: lunch ***"]
            ])
        #expect(state.onlineUsers.first { $0.name == "alice" }?.away == "lunch")
        let away = "*** alice is away: lunch ***"
        // bob is told once, carol once too; the messages themselves are delivered as usual.
        let first = state.apply(.privateMessage(bob.id, target: "alice", text: "hi"), at: now)
        #expect(lines(first)[bob.id] == ["[PM to alice]: hi", away])
        #expect(first.contains { if case .privateMessage(alice, _, from: "bob") = $0 { true } else { false } })
        #expect(
            lines(state.apply(.privateMessage(bob.id, target: "alice", text: "again"), at: now))[bob.id] == [
                "[PM to alice]: again"
            ])
        #expect(
            lines(state.apply(.privateMessage(carol.id, target: "Alice", text: "yo"), at: now))[carol.id] == [
                "[PM to alice]: yo", away,
            ])
        // alice says something: she is back, and nobody is told any more.
        #expect(
            lines(state.apply(.say(alice.id, text: "back", isAction: false), at: now))[alice.id] == [
                "*** You are back ***"
            ])
        #expect(state.onlineUsers.first { $0.name == "alice" }?.away == nil)
        #expect(
            lines(state.apply(.privateMessage(bob.id, target: "alice", text: "?"), at: now))[bob.id] == [
                "[PM to alice]: ?"
            ])
        // Away again: the count starts over; /away alone is back.
        _ = state.apply(.setAway(alice.id, message: "gone"), at: now)
        #expect(
            lines(state.apply(.privateMessage(bob.id, target: "alice", text: "!"), at: now))[bob.id] == [
                "[PM to alice]: !", "*** alice is away: gone ***",
            ])
        #expect(lines(state.apply(.setAway(alice.id, message: nil), at: now)) == [alice.id: ["*** You are back ***"]])
        // A private message she sends ends it too.
        _ = state.apply(.setAway(alice.id, message: "gone"), at: now)
        #expect(
            lines(state.apply(.privateMessage(alice.id, target: "bob", text: "k"), at: now))[alice.id] == [
                "*** You are back ***", "[PM to bob]: k",
            ])
    }

    /// `/nick`: the name moves (the old one is free at once), the room is told, what is
    /// kept by session or address stays, and what others hold by name follows.
    @Test mutating func aRenameMovesTheNameAndWhatOthersHoldByIt() throws {
        state = HubState(
            configuration: .init(shardCount: 2, historySize: 10, maxConnectionsPerIP: 1, renamesPerMinute: 2))
        let alice = login("alice", ip: "10.0.0.1")
        let bob = login("bob", ip: "10.0.0.2", shard: 1)
        _ = state.apply(.create(alice.id, room: RoomName("#den")!, isPrivate: true), at: now)
        _ = state.apply(.invite(alice.id, target: "bob"), at: now)
        _ = state.apply(.join(bob.id, room: RoomName("#den")!), at: now)
        _ = state.apply(.say(alice.id, text: "mine", isAction: false), at: now)
        _ = state.apply(.setAway(bob.id, message: "lunch"), at: now)
        #expect(lines(state.apply(.privateMessage(alice.id, target: "bob", text: "hi"), at: now))[alice.id]?.count == 2)

        // The rules of a login: a name taken in any case, and the name one has.
        #expect(
            lines(state.apply(.rename(alice.id, to: "BOB"), at: now)) == [
                alice.id: ["ERROR: Username 'BOB' is already taken."]
            ])
        #expect(
            lines(state.apply(.rename(alice.id, to: "alice"), at: now)) == [
                alice.id: ["ERROR: You are already known as alice."]
            ])

        let effects = state.apply(.rename(alice.id, to: "alicia"), at: now)
        #expect(answers(effects) == [.renamed(from: "alice", to: "alicia")])
        let den = try #require(state.rooms["#den"])
        guard case .room(den.id, let line, nil, let shards) = effects.dropFirst().first else {
            Issue.record("no line to the room: \(effects)")
            return
        }
        #expect(String(buffer: line) == "*** alice is now known as alicia ***\n")
        #expect(shards == 0b11)
        guard case .renamed(fromKey: "alice", to: "alicia") = effects.last else {
            Issue.record("no rename for the shards: \(effects)")
            return
        }
        #expect(state.member(named: "alice") == nil)
        #expect(state.member(named: "ALICIA")?.0 == alice.id)
        #expect(state.rooms["#den"]?.ownerKey == "alice@example.com")
        // Her line in the history counts as the new name's (for those who ignore her).
        #expect(state.rooms["#den"]?.history.recent(at: now).map(\.sender) == ["alicia"])
        // bob's away notice was given to alice: not again under her new name.
        #expect(
            lines(state.apply(.privateMessage(alice.id, target: "bob", text: "again"), at: now))[alice.id] == [
                "[PM to bob]: again"
            ])
        // The old name is free at once.
        state.configuration.maxConnectionsPerIP = 2
        _ = login("alice", ip: "10.0.0.1")

        // A change of case keeps the name; a third change in a minute waits.
        #expect(
            answers(state.apply(.rename(alice.id, to: "Alicia"), at: now)) == [.renamed(from: "alicia", to: "Alicia")])
        #expect(
            lines(state.apply(.rename(alice.id, to: "ally"), at: now)) == [
                alice.id: ["ERROR: Too many name changes. Try again in 60 seconds."]
            ])
        now = LogTime(milliseconds: now.milliseconds + 60_000)
        #expect(answers(state.apply(.rename(alice.id, to: "ally"), at: now)) == [.renamed(from: "Alicia", to: "ally")])
    }

    /// An empty room is kept for `ROOM_KEEP_EMPTY_DAYS` (its owner an address), through a
    /// node's going down too, and the sweep drops it once the days are over, in log time.
    @Test mutating func anEmptyRoomIsKeptForItsDaysThenSwept() throws {
        state = HubState(
            configuration: .init(shardCount: 2, historySize: 10, maxConnectionsPerIP: 2, roomKeepEmptyDays: 2))
        let alice = login("alice", onNode: 1, ip: "10.0.0.1")
        _ = state.apply(.create(alice.id, room: RoomName("#den")!, isPrivate: true), at: now)
        _ = state.apply(.setTopic(alice.id, text: "kept"), at: now)
        _ = state.apply(.nodeDown(1), at: now)
        let den = try #require(state.rooms["#den"])
        #expect(den.members.isEmpty && den.ownerKey == "alice@example.com" && den.topic == "kept")
        #expect(den.emptySince == now && den.allowed == ["alice@example.com"])
        let almost = LogTime(milliseconds: now.milliseconds + 2 * 86_400_000 - 1)
        _ = state.apply(.sweep, at: almost)
        #expect(state.rooms["#den"] != nil)
        _ = state.apply(.sweep, at: LogTime(milliseconds: almost.milliseconds + 1))
        #expect(state.rooms["#den"] == nil)
    }

    @Test mutating func aNodeGoingDownReleasesEveryConnectionItHeld() {
        let alice = login("alice", onNode: 1, ip: "10.0.0.1")
        _ = login("bob", onNode: 2, ip: "10.0.0.2")
        _ = login("carol", onNode: 2, ip: "10.0.0.3")
        #expect(state.connectionsPerNode == [1: 1, 2: 2])

        let effects = state.apply(.nodeDown(2), at: now)
        let notices = effects.compactMap { effect -> String? in
            guard case .presence(_, let line, _, _) = effect else { return nil }
            return String(buffer: line).trimmingNewline
        }
        // In id order: bob's session was numbered before carol's.
        #expect(notices == ["*** bob left the room ***", "*** carol left the room ***"])
        // Their node closes the connections the state released (and no others).
        let closed = effects.compactMap { effect -> SessionID? in
            guard case .close(let id) = effect else { return nil }
            return id
        }
        #expect(closed.count == 2 && closed.allSatisfy { SessionIDSpace.node(of: $0) == 2 })
        #expect(state.sessions.keys.sorted() == [alice.id])
        #expect(state.member(named: "bob") == nil && state.member(named: "carol") == nil)
        #expect(state.connectionsPerIP == ["10.0.0.1": 1])
        #expect(state.connectionsPerNode == [1: 1])
        // Again (another node saw the same expiry): nothing left to do.
        #expect(state.apply(.nodeDown(2), at: now).isEmpty)
        // The name is free for a user on another node.
        _ = login("bob", onNode: 3, ip: "10.0.0.2")
    }

    @Test mutating func aFreshStateIsRebuiltFromTheNodesAnnouncementsInLogOrder() throws {
        // The state Redis lost: alice and carol (node 1) in the private #den, bob (node 2) in
        // #general, and a connection of node 2 not logged in yet.
        let alice = login("alice", onNode: 1, ip: "10.0.0.1")
        let bob = login("bob", onNode: 2, ip: "10.0.0.2")
        let carol = login("carol", onNode: 1, ip: "10.0.0.3")
        _ = state.apply(.create(alice.id, room: RoomName("#Den")!, isPrivate: true), at: now)
        _ = state.apply(.invite(alice.id, target: "carol"), at: now)
        _ = state.apply(.join(carol.id, room: RoomName("#den")!), at: now)
        _ = state.apply(.setTopic(alice.id, text: "plans"), at: now)
        let waiting = SessionAddress(id: SessionIDSpace.firstID(of: 2) + 99, shard: 1)
        _ = state.apply(.admit(waiting, ip: "10.0.0.4", display: "10.0.0.4"), at: now)
        let node1 = state.reannouncements(of: 1)
        let node2 = state.reannouncements(of: 2)
        #expect(node1.map(\.id) == [alice.id, carol.id])
        #expect(node2.map(\.id) == [bob.id, waiting.id])
        #expect(node2.last?.member == nil)

        var fresh = HubState(configuration: state.configuration)
        // Meanwhile another user took "bob" on node 3: the fresh log has them first.
        let otherBob = SessionAddress(id: SessionIDSpace.firstID(of: 3), shard: 0)
        _ = fresh.apply(.admit(otherBob, ip: "10.0.0.9", display: "10.0.0.9"), at: now)
        _ = fresh.apply(
            .login(otherBob, username: "bob", emailKey: "bob2@example.com", ip: "10.0.0.9", isOperator: false), at: now)
        let first = fresh.apply(.reannounce(1, node1), at: now)
        let second = fresh.apply(.reannounce(2, node2), at: now)

        // Members come back in their rooms without a word to anyone.
        #expect(lines(first).isEmpty)
        #expect(first.filter { if case .presence = $0 { true } else { false } }.isEmpty)
        let den = try #require(fresh.rooms["#den"])
        #expect(den.name.display == "#Den" && den.isPrivate && den.members == [alice.id, carol.id])
        #expect(den.ownerKey == "alice@example.com" && den.topic == nil)
        #expect(den.allowed == ["alice@example.com", "carol@example.com"])
        #expect(fresh.sessions[carol.id]?.roomKey == "#den")
        // The later bob is told and disconnected; his slot stays until his release.
        #expect(
            lines(second) == [bob.id: ["*** You were disconnected: your username is in use on another server. ***"]])
        #expect(fresh.member(named: "bob")?.0 == otherBob.id)
        #expect(fresh.connections[bob.id] == "10.0.0.2" && fresh.connections[waiting.id] == "10.0.0.4")
        #expect(fresh.connectionsPerNode == [1: 2, 2: 2, 3: 1])
        _ = fresh.apply(.release(bob.id), at: now)
        #expect(fresh.connectionsPerIP["10.0.0.2"] == nil)
        // Announced again (a node that retried): nothing changes.
        #expect(fresh.apply(.reannounce(1, node1), at: now).isEmpty)
        #expect(fresh.rooms["#den"]?.members == [alice.id, carol.id])
    }

    @Test mutating func maxConnectionsIsEachNodesCapacity() {
        state = HubState(configuration: .init(historySize: 10, maxConnectionsPerIP: 5, maxConnections: 1))
        let first = SessionAddress(id: SessionIDSpace.firstID(of: 1), shard: 0)
        let second = SessionAddress(id: SessionIDSpace.firstID(of: 1) + 1, shard: 0)
        let elsewhere = SessionAddress(id: SessionIDSpace.firstID(of: 2), shard: 0)
        #expect(
            answers(state.apply(.admit(first, ip: "10.0.0.1", display: "10.0.0.1"), at: now)) == [.admission(.admitted)]
        )
        #expect(
            answers(state.apply(.admit(second, ip: "10.0.0.1", display: "10.0.0.1"), at: now)) == [
                .admission(.refused(line: UserError.serverFull.line, reason: .serverFull))
            ])
        #expect(
            answers(state.apply(.admit(elsewhere, ip: "10.0.0.1", display: "10.0.0.1"), at: now)) == [
                .admission(.admitted)
            ])
    }

    @Test mutating func theSameCommandsGiveTheSameEffects() {
        var other = HubState(configuration: state.configuration)
        let commands: [HubCommand] = [
            .admit(SessionAddress(id: 1, shard: 0), ip: "10.0.0.1", display: "10.0.0.1"),
            .login(
                SessionAddress(id: 1, shard: 0), username: "alice", emailKey: "a@x.io", ip: "10.0.0.1",
                isOperator: false),
            .say(1, text: "hello", isAction: false),
            .create(1, room: RoomName("#den")!, isPrivate: true),
            .release(1),
        ]
        for (offset, command) in commands.enumerated() {
            let at = now + .seconds(offset)
            #expect("\(state.apply(command, at: at))" == "\(other.apply(command, at: at))")
        }
        #expect(state.rooms.count == other.rooms.count && state.sessions.isEmpty && other.connections.isEmpty)
    }

    @Test mutating func bansEndWhenTheyExpire() {
        let opal = login("opal", operator: true, ip: "10.0.0.1")
        let bob = login("bob", ip: "10.0.0.2", shard: 1)
        let effects = state.apply(.ban(opal.id, target: "bob", minutes: 5), at: now)
        // The confirmation before the disconnect; the victim is told why.
        #expect(lines(effects)[opal.id] == ["*** bob is banned for 5 minutes (e-mail address and IP address) ***"])
        #expect(lines(effects)[bob.id] == ["*** You have been banned from this server by opal for 5 minutes ***"])
        _ = state.apply(.release(bob.id), at: now)

        let again = SessionAddress(id: 99, shard: 1)
        #expect(
            answers(state.apply(.admit(again, ip: "10.0.0.2", display: "10.0.0.2"), at: now + .seconds(299)))
                == [.admission(.refused(line: "ERROR: You are banned from this server.", reason: .banned))])
        #expect(
            answers(state.apply(.requestCode(again, emailKey: "bob@example.com", ip: "10.0.0.3"), at: now))
                == [.codeRequest(.banned)])
        #expect(state.banList(for: opal.id, at: now).map(\.count) == .success(2))
        // Five minutes later, the same address is welcome.
        let later = now + .seconds(300)
        #expect(
            answers(state.apply(.admit(again, ip: "10.0.0.2", display: "10.0.0.2"), at: later))
                == [.admission(.admitted)])
        #expect(state.banList(for: opal.id, at: later).map(\.count) == .success(0))
        _ = state.apply(.sweep, at: later)
        #expect(state.bans.isEmpty)
    }

    @Test mutating func invitationsEndWhenTheRoomDisappears() {
        let alice = login("alice", ip: "10.0.0.1")
        let bob = login("bob", ip: "10.0.0.2")
        let secret = RoomName("#secret")!
        _ = state.apply(.create(alice.id, room: secret, isPrivate: true), at: now)
        let invited = state.apply(.invite(alice.id, target: "bob"), at: now)
        #expect(lines(invited)[alice.id] == ["*** You invited bob to #secret ***"])
        #expect(state.roomListings(for: bob.id).map(\.name) == ["#general", "#secret"])
        _ = state.apply(.leave(alice.id), at: now)  // the room empties and disappears
        #expect(state.roomListings(for: bob.id).map(\.name) == ["#general"])
        // A new room of the same name does not inherit the old invitation.
        _ = state.apply(.create(alice.id, room: secret, isPrivate: true), at: now)
        #expect(
            lines(state.apply(.join(bob.id, room: secret), at: now))[bob.id]
                == ["ERROR: #secret is private. Ask a member for an invite."])
    }

    @Test mutating func anInvitationBelongsToTheAddress() {
        let alice = login("alice", ip: "10.0.0.1")
        let bob = login("bob", ip: "10.0.0.2")
        _ = state.apply(.create(alice.id, room: RoomName("#secret")!, isPrivate: true), at: now)
        _ = state.apply(.invite(alice.id, target: "bob"), at: now)
        _ = state.apply(.release(bob.id), at: now)
        // Someone else under bob's name is not invited; bob under another name is.
        let mallory = SessionAddress(id: 50, shard: 0)
        _ = state.apply(.admit(mallory, ip: "10.0.0.5", display: "10.0.0.5"), at: now)
        _ = state.apply(
            .login(mallory, username: "bob", emailKey: "mallory@x.io", ip: "10.0.0.5", isOperator: false), at: now)
        #expect(state.roomListings(for: mallory.id).map(\.name) == ["#general"])
        let robert = SessionAddress(id: 51, shard: 1)
        _ = state.apply(.admit(robert, ip: "10.0.0.2", display: "10.0.0.2"), at: now)
        _ = state.apply(
            .login(robert, username: "robert", emailKey: "bob@example.com", ip: "10.0.0.2", isOperator: false), at: now)
        let joined = state.apply(.join(robert.id, room: RoomName("#secret")!), at: now)
        #expect(joined.contains { if case .enterRoom(robert, _, _, _) = $0 { true } else { false } })
    }

    @Test mutating func releaseForgetsEverything() {
        let alice = login("alice", ip: "10.0.0.1")
        _ = state.apply(.create(alice.id, room: RoomName("#den")!, isPrivate: true), at: now)
        _ = state.apply(.release(alice.id), at: now)
        #expect(state.connections.isEmpty && state.connectionsPerIP.isEmpty && state.sessions.isEmpty)
        #expect(state.sessionIDsByName.isEmpty && state.rooms.count == 1)
        // Released twice, or never admitted: nothing changes.
        _ = state.apply(.release(alice.id), at: now)
        _ = state.apply(.release(12345), at: now)
        #expect(state.connections.isEmpty && state.connectionChurn == 2)
    }

    @Test mutating func aLineGoesOnlyToTheShardsWithMembers() {
        let alice = login("alice", ip: "10.0.0.1", shard: 0)
        let effects = state.apply(.say(alice.id, text: "hi", isAction: false), at: now)
        guard case .room(0, let line, "alice", let shards) = effects.first else {
            Issue.record("expected a room line, got \(effects)")
            return
        }
        #expect(String(buffer: line) == "[alice]: hi\n" && shards == 0b01)
        _ = login("bob", ip: "10.0.0.2", shard: 1)
        guard case .room(_, _, _, let both) = state.apply(.say(alice.id, text: "hi", isAction: true), at: now).first
        else {
            Issue.record("expected a room line")
            return
        }
        #expect(both == 0b11)
    }

    @Test mutating func theShutdownNoticeIsLastAndAllClosedComesWithTheLastRelease() {
        let alice = login("alice", ip: "10.0.0.1")
        let bob = login("bob", ip: "10.0.0.2", shard: 1)
        let shutdown = state.apply(.shutdown, at: now)
        #expect(shutdown.count == 1)
        let first = state.apply(.release(alice.id), at: now)
        // Nobody is told of departures any more: the notice stays everyone's last line.
        #expect(!first.contains { if case .presence = $0 { true } else { false } })
        #expect(!first.contains { if case .allConnectionsClosed = $0 { true } else { false } })
        let last = state.apply(.release(bob.id), at: now)
        #expect(last.contains { if case .allConnectionsClosed = $0 { true } else { false } })
        #expect(
            answers(state.apply(.admit(SessionAddress(id: 9, shard: 0), ip: "10.0.0.9", display: "10.0.0.9"), at: now))
                == [.admission(.refused(line: "*** Server is shutting down ***", reason: .shuttingDown))])
    }

    @Test func hubCommandsRoundTripThroughCodable() throws {
        let commands: [HubCommand] = [
            .admit(SessionAddress(id: 7, shard: 1), ip: "2001:db8::/64", display: "2001:db8::1"),
            .create(7, room: RoomName("#Den")!, isPrivate: true),
            .say(7, text: "hi \"there\"", isAction: true),
            .shutdown,
        ]
        let data = try JSONEncoder().encode(commands)
        #expect(try JSONDecoder().decode([HubCommand].self, from: data) == commands)
    }
}

extension String {
    fileprivate var trimmingNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}
