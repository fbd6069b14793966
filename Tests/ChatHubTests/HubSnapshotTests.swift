import ChatCore
import Foundation
import NIOCore
import Testing

@testable import ChatHub

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
        let stored = try HubSnapshot.stored(original, upTo: StreamID(milliseconds: 5, sequence: 2), position: 17)
        var (loaded, upTo, position) = try HubSnapshot.read(stored, configuration: configuration)
        #expect(position == 17)
        #expect(upTo == StreamID(milliseconds: 5, sequence: 2))
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
        let future = Array("chat-snapshot/6 5-0\n{\"anything\":1}".utf8)
        #expect(throws: HubSnapshot.ReadError.self) { try HubSnapshot.read(future, configuration: configuration) }
        #expect(throws: HubSnapshot.ReadError.self) {
            try HubSnapshot.read(Array("hello".utf8), configuration: configuration)
        }
        do {
            _ = try HubSnapshot.read(future, configuration: configuration)
        } catch {
            #expect("\(error)" == "{chat}:snapshot is of format 6, this version reads 1 to 5 only")
        }
    }

    /// Every field of the state is in the snapshot, with nothing listed by hand (what the
    /// fields hold is compared by the decisions above: dictionaries encode in no fixed order).
    @Test func everyFieldOfTheStateIsStored() throws {
        let original = busyState()
        let stored = try HubSnapshot.stored(original, upTo: StreamID(milliseconds: 5, sequence: 0), position: nil)
        let (loaded, _, position) = try HubSnapshot.read(stored, configuration: configuration)
        #expect(position == nil)
        let fields = Set(Mirror(reflecting: original).children.compactMap(\.label))
        let json = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(original)) as? [String: Any])
        #expect(Set(json.keys) == fields)
        #expect(loaded.sessions == original.sessions)
        #expect(loaded.bans == original.bans)
        #expect(loaded.connections == original.connections)
        #expect(loaded.nextRoomID == original.nextRoomID)
    }

    /// A snapshot does not carry its writer's shutdown or limits into the loading node.
    @Test func aLoadedStateTakesTheLoadingNodesLimitsAndNoShutdown() throws {
        var original = busyState()
        _ = original.apply(.shutdown, at: now)
        #expect(original.isShuttingDown)
        var mine = configuration
        mine.presenceNoticeMaxMembers = 7
        let stored = try HubSnapshot.stored(original, upTo: StreamID(milliseconds: 5, sequence: 0), position: 3)
        let (loaded, _, _) = try HubSnapshot.read(stored, configuration: mine)
        #expect(!loaded.isShuttingDown)
        #expect(loaded.configuration == mine)
    }

    /// The formats before this one still load: format 1 held the state's fields without its
    /// configuration, format 2 had no `/nick` throttle (in the state or its configuration),
    /// format 3 no kept rooms.
    @Test(arguments: [1, 2, 3]) func aSnapshotOfAFormatBeforeLoads(format: Int) throws {
        var original = busyState()
        // A session id past 2^53 (a high node number) survives the conversion exactly.
        let far = address(9, node: 1 << 20)
        _ = original.apply(.admit(far, ip: "10.0.0.9", display: "10.0.0.9"), at: now)
        #expect(far.id > 1 << 53)
        var object = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(original)) as? [String: Any])
        object["renames"] = nil
        if format == 1 {
            object["configuration"] = nil
            object["isShuttingDown"] = nil
        } else {
            var old = try #require(object["configuration"] as? [String: Any])
            for field in ["roomKeepEmptyDays", "maxRooms", "roomsPerOwner"] { old[field] = nil }
            if format == 2 { old["renamesPerMinute"] = nil }
            object["configuration"] = old
        }
        let stored =
            Array("chat-snapshot/\(format) 5-0 9\n".utf8) + Array(try JSONSerialization.data(withJSONObject: object))
        var (loaded, upTo, position) = try HubSnapshot.read(stored, configuration: configuration)
        #expect(upTo == StreamID(milliseconds: 5, sequence: 0) && position == 9)
        #expect(loaded.connections == original.connections)
        #expect(loaded.configuration == configuration)
        var before = original
        let command = HubCommand.say(address(2).id, text: "still here", isAction: false)
        #expect(text(loaded.apply(command, at: now)) == text(before.apply(command, at: now)))
    }
}

/// The cluster's settings check, derived from the configuration.
@Suite struct SettingsFingerprintTests {
    @Test func fieldsAreNamedAsSettingsNestedOnesToo() {
        #expect(SettingsFingerprint.settingName("historySize") == "HISTORY_SIZE")
        #expect(SettingsFingerprint.settingName("maxConnectionsPerIP") == "MAX_CONNECTIONS_PER_IP")
        #expect(SettingsFingerprint.settingName("connectionsPerIPPerMinute") == "CONNECTIONS_PER_IP_PER_MINUTE")
        let line = SettingsFingerprint.of(
            .init(
                historySize: 7, maxConnectionsPerIP: 2,
                codeRequests: .init(interval: .seconds(30), perAddressPerHour: 5, perClientPerHour: 20, perMinute: 100))
        )
        #expect(line.hasPrefix("hub-log/3 "))
        #expect(line.contains(" HISTORY_SIZE=7 "))
        #expect(line.contains(" CODE_REQUESTS_INTERVAL=30000ms "))
        #expect(line.contains(" CODE_REQUESTS_PER_MINUTE=100 "))
    }

    /// Every field counts: a change to any one of them, nested ones too, changes the line.
    @Test func everyFieldCounts() {
        let base = HubState.Configuration(historySize: 7, maxConnectionsPerIP: 2)
        var changes: [HubState.Configuration] = []
        for change in 0..<15 {
            var other = base
            switch change {
            case 0: other.shardCount = 2
            case 1: other.historySize = 8
            case 2: other.maxConnectionsPerIP = 3
            case 3: other.maxConnections = 10
            case 4: other.connectionsPerIPPerMinute = 10
            case 5: other.codeRequests.interval = .seconds(1)
            case 6: other.codeRequests.perAddressPerHour = 1
            case 7: other.codeRequests.perClientPerHour = 1
            case 8: other.codeRequests.perMinute = 1
            case 9: other.presenceNoticeMaxMembers = 1
            case 10: other.renamesPerMinute = 1
            case 11: other.roomKeepEmptyDays = 1
            case 12: other.maxRooms = 1
            case 13: other.roomsPerOwner = 1
            default: other.resumeTokenDays = 1
            }
            changes.append(other)
        }
        let lines = Set(([base] + changes).map(SettingsFingerprint.of))
        #expect(lines.count == 16)
        // The version, then the fifteen fields (the four of the code-request limits one by one).
        #expect(SettingsFingerprint.of(base).split(separator: " ").count == 16)
    }
}
