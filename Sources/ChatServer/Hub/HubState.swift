import ChatCore
import NIOCore

/// A user who is online, as the hub knows them.
struct Member: Sendable {
    var name: String
    var shard: Int
    var roomKey: String
    var emailKey: String
    var ip: String
    var isOperator: Bool
}

struct Room: Sendable {
    let name: RoomName
    let id: RoomID
    let isPrivate: Bool
    /// Members in the order they joined: the first is the longest present.
    var members: [SessionID] = []
    /// How many members each loop shard has, so a line goes only to shards that need it.
    var membersPerShard: [Int]
    var owner: SessionID?
    var topic: String?
    /// Who may enter a private room, by e-mail key: its creator and everyone invited,
    /// until kicked. Keyed by address, not session, so an invitation survives the
    /// invitee's reconnect and never passes to someone who later takes their name.
    var allowed: Set<String> = []
    var history: RoomHistory<HistoryLine>

    init(name: RoomName, id: RoomID, isPrivate: Bool, shardCount: Int, historySize: Int) {
        self.name = name
        self.id = id
        self.isPrivate = isPrivate
        self.membersPerShard = Array(repeating: 0, count: shardCount)
        self.history = RoomHistory(capacity: historySize)
    }
}

/// Everything the hub guards with its lock. Methods here run under the lock and only
/// decide and queue; they never do I/O.
struct HubState: Sendable {
    let shardCount: Int
    let historySize: Int
    var sessions: [SessionID: Member] = [:]
    var sessionIDsByName: [String: SessionID] = [:]
    var rooms: [String: Room] = [:]
    var nextRoomID: RoomID = 1
    var connectionsPerIP: [String: Int] = [:]
    var connectionCount = 0
    /// Connections opened plus connections closed since start (for ``MemoryReclaimer``).
    var connectionChurn: UInt64 = 0
    /// New connections per client IP per minute.
    var connectionRate: RateLimit<String>
    /// Banned e-mail keys and IPs, with when each ban ends.
    var bans: [String: ContinuousClock.Instant] = [:]
    var isShuttingDown = false
    var allClosed: EventLoopPromise<Void>?

    init(shardCount: Int, historySize: Int, connectionsPerIPPerMinute: Int = Int.max) {
        self.shardCount = shardCount
        self.historySize = historySize
        self.connectionRate = RateLimit(limit: max(1, min(connectionsPerIPPerMinute, 1_000_000)), per: .seconds(60))
    }

    func member(named name: String) -> (SessionID, Member)? {
        guard let id = sessionIDsByName[name.lowercased()], let member = sessions[id] else { return nil }
        return (id, member)
    }

    /// Whether the session may enter (or see) the room: any public room; a private one
    /// when its address was let in.
    func mayEnter(_ room: Room, _ session: SessionID) -> Bool {
        guard room.isPrivate else { return true }
        guard let emailKey = sessions[session]?.emailKey else { return false }
        return room.allowed.contains(emailKey)
    }

    /// Moves a member from their room to `name` (created when missing, with them as
    /// owner), telling both rooms.
    /// - Parameters:
    ///   - departureNotice: what the old room is told (default: `... left the room`).
    ///   - firstLines: the mover's own lines, from the old and new rooms' names; the new
    ///     room's topic and history follow them.
    mutating func move(
        _ session: SessionID,
        to name: RoomName,
        isPrivate: Bool,
        now: ContinuousClock.Instant,
        outbox: inout Outbox,
        departureNotice: String? = nil,
        firstLines: (_ previousRoom: String, _ newRoom: String) -> [String]
    ) {
        guard let member = sessions[session] else { return }
        let previous = rooms[member.roomKey]?.name.display ?? member.roomKey
        leaveRoom(session, notice: departureNotice ?? ServerLine.leftRoom(member.name), outbox: &outbox)
        if rooms[name.key] == nil {
            var room = Room(
                name: name, id: nextRoomID, isPrivate: isPrivate, shardCount: shardCount, historySize: historySize)
            room.owner = session
            rooms[name.key] = room
            nextRoomID += 1
            if isPrivate { rooms[name.key]?.allowed.insert(member.emailKey) }
        }
        let newRoom = rooms[name.key]!.name.display
        enter(
            session, into: name, firstLines: firstLines(previous, newRoom).map(ChatHub.encode), now: now,
            outbox: &outbox)
    }

    /// Adds the session to an existing room and queues, for the session, `firstLines`
    /// followed by the room's topic and history, and for the others the join notice.
    mutating func enter(
        _ session: SessionID,
        into name: RoomName,
        firstLines: [ByteBuffer],
        now: ContinuousClock.Instant,
        outbox: inout Outbox
    ) {
        guard var member = sessions[session], var room = rooms.removeValue(forKey: name.key) else { return }
        room.members.append(session)
        room.membersPerShard[member.shard] += 1
        member.roomKey = name.key
        sessions[session] = member

        var lines = firstLines
        if let topic = room.topic {
            lines.append(ChatHub.encode(ServerLine.topic(topic, of: room.name.display)))
        }
        outbox.post(.enterRoom(session, room.id, lines, history: room.history.recent(at: now)), toShard: member.shard)
        outbox.post(presence: ChatHub.encode(ServerLine.joinedRoom(member.name)), to: room, except: session)
        rooms[name.key] = room
    }

    /// Removes the session from its room and tells the others with `notice`; passes
    /// ownership on to the longest-present member; drops an empty room other than
    /// `#general`, and with it its invitations.
    mutating func leaveRoom(_ session: SessionID, notice: String, outbox: inout Outbox) {
        guard let member = sessions[session], var room = rooms.removeValue(forKey: member.roomKey) else { return }
        if let index = room.members.firstIndex(of: session) {
            room.members.remove(at: index)
            room.membersPerShard[member.shard] -= 1
        }
        outbox.post(.exitRoom(session, room.id), toShard: member.shard)
        // The room and its invitations disappear with its last member.
        if room.members.isEmpty && room.name != .general { return }
        // While the server shuts down everyone leaves at once and the shutdown notice must
        // stay each user's last line: the room is not told.
        if !isShuttingDown { outbox.post(presence: ChatHub.encode(notice), to: room, except: session) }
        if room.owner == session, room.name != .general {
            room.owner = room.members.first
            if let heir = room.owner, let heirName = sessions[heir]?.name, !isShuttingDown {
                outbox.post(ChatHub.encode(ServerLine.newOwner(heirName, of: room.name.display)), to: room)
            }
        }
        rooms[member.roomKey] = room
    }

    mutating func isBanned(_ key: String, now: ContinuousClock.Instant) -> Bool {
        guard let until = bans[key] else { return false }
        if now < until { return true }
        bans[key] = nil
        return false
    }

    mutating func sweepBans(now: ContinuousClock.Instant) {
        bans = bans.filter { now < $0.value }
    }
}

/// Collects which shards need a drain scheduled while the hub's lock is held, so the
/// wake-ups (which may be syscalls) happen after it is released.
struct Outbox {
    let shards: [LoopShard]
    private var wake: UInt64 = 0

    init(shards: [LoopShard]) {
        self.shards = shards
    }

    mutating func post(_ event: ShardEvent, toShard index: Int) {
        if shards[index].enqueue(event) { wake |= 1 << UInt64(index) }
    }

    /// Queues a line for a room's members on every shard that has some.
    mutating func post(_ line: ByteBuffer, to room: Room, from sender: String? = nil) {
        for (index, count) in room.membersPerShard.enumerated() where count > 0 {
            post(.room(room.id, line, from: sender), toShard: index)
        }
    }

    /// Queues a join or leave notice (flushed lazily) for the room's members but `subject`.
    mutating func post(presence line: ByteBuffer, to room: Room, except subject: SessionID) {
        for (index, count) in room.membersPerShard.enumerated() where count > 0 {
            post(.presence(room.id, line, except: subject), toShard: index)
        }
    }

    func wakeShards() {
        var pending = wake
        while pending != 0 {
            let index = pending.trailingZeroBitCount
            pending &= pending - 1
            shards[index].scheduleDrain()
        }
    }
}
