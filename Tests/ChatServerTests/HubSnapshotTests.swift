import ChatCore
import NIOCore
import Testing

@testable import ChatServer

/// A cluster's snapshot gives back a state that decides exactly as the one it was taken of.
@Suite struct HubSnapshotTests {
    let configuration = HubState.Configuration(
        shardCount: 64, historySize: 10, maxConnectionsPerIP: 2,
        connectionsPerIPPerMinute: 30,
        codeRequests: .init(interval: .seconds(30), perAddressPerHour: 5, perClientPerHour: 20, perMinute: 100))
    let now = LogTime(milliseconds: 1_700_000_000_000)

    private func address(_ number: UInt64, node: NodeNumber = 1) -> SessionAddress {
        SessionAddress(id: SessionIDSpace.firstID(of: node) + number, shard: Int(number % 3))
    }

    /// Users, a private room with an owner, a topic, an invitation and history, a ban, and
    /// throttle counts.
    private func busyState() -> HubState {
        var state = HubState(configuration: configuration)
        for (number, name) in [(1, "alice"), (2, "bob"), (3, "carol")] {
            let ip = "10.0.0.\(number)"
            _ = state.apply(.admit(address(UInt64(number)), ip: ip, display: ip), at: now)
            _ = state.apply(.requestCode(address(UInt64(number)), emailKey: "\(name)@x.io", ip: ip), at: now)
            _ = state.apply(
                .login(
                    address(UInt64(number)), username: name, emailKey: "\(name)@x.io", ip: ip,
                    isOperator: name == "alice"),
                at: now)
        }
        let alice = address(1).id
        _ = state.apply(.say(alice, text: "in general", isAction: false), at: now)
        _ = state.apply(.create(alice, room: RoomName("#den")!, isPrivate: true), at: now)
        _ = state.apply(.setTopic(alice, text: "plans"), at: now)
        _ = state.apply(.say(alice, text: "in the den", isAction: true), at: now)
        _ = state.apply(.invite(alice, target: "bob"), at: now)
        _ = state.apply(.ban(alice, target: "carol", minutes: 10), at: now)
        return state
    }

    private func text(_ effects: [HubEffect]) -> [String] {
        effects.map { effect in
            switch effect {
            case .room(let room, let line, _, let shards): "room \(room) \(String(buffer: line)) \(shards)"
            case .presence(let room, let line, let except, _): "presence \(room) \(String(buffer: line)) \(except)"
            case .lines(let to, let lines): "lines \(to.id) \(lines.map { String(buffer: $0) })"
            case .enterRoom(let to, let room, let lines, let history):
                "enter \(to.id) \(room) \(lines.map { String(buffer: $0) }) \(history.map { String(buffer: $0.line) })"
            default: "\(effect)"
            }
        }
    }

    @Test func aLoadedSnapshotDecidesAsTheStateItWasTakenOf() throws {
        let original = busyState()
        let stored = try HubSnapshot(original).stored(upTo: StreamID(milliseconds: 5, sequence: 2), position: 17)
        let (snapshot, upTo, position) = try HubSnapshot.read(stored)
        #expect(position == 17)
        #expect(upTo == StreamID(milliseconds: 5, sequence: 2))
        var loaded = snapshot.state(configuration: configuration)
        var before = original

        let later = now + .seconds(60)
        let commands: [HubCommand] = [
            .join(address(2).id, room: RoomName("#den")!),  // the invitation, the topic, the history
            .say(address(2).id, text: "hi", isAction: false),
            .requestCode(address(4), emailKey: "alice@x.io", ip: "10.0.0.9"),  // spacing: 30 s not over? it is
            .admit(address(5), ip: "10.0.0.3", display: "10.0.0.3"),  // carol's IP is banned
            .admit(address(6), ip: "10.0.0.1", display: "10.0.0.1"),  // alice's IP: one slot left
            .admit(address(7), ip: "10.0.0.1", display: "10.0.0.1"),  // and then none
            .release(address(1).id),  // alice leaves: ownership of #den passes to bob
            .create(address(2).id, room: RoomName("#next")!, isPrivate: false),  // room ids go on alike
        ]
        for command in commands {
            #expect(text(loaded.apply(command, at: later)) == text(before.apply(command, at: later)), "\(command)")
        }
        #expect(loaded.memberLines(for: address(2).id) == before.memberLines(for: address(2).id))
        #expect(loaded.topicLine(for: address(2).id) == before.topicLine(for: address(2).id))
        #expect(loaded.activeBanCount(at: later) == 2)
    }

    @Test func aSnapshotOfAnotherFormatIsRefusedNotMisread() {
        let future = Array("chat-snapshot/2 5-0\n{\"anything\":1}".utf8)
        #expect(throws: HubSnapshot.ReadError.self) { try HubSnapshot.read(future) }
        #expect(throws: HubSnapshot.ReadError.self) { try HubSnapshot.read(Array("hello".utf8)) }
        do {
            _ = try HubSnapshot.read(future)
        } catch {
            #expect("\(error)" == "{chat}:snapshot is of format 2, this version reads 1 only")
        }
    }
}
